// One watched tenant feed (`jobs` or `videos`, PROTOCOL.md sections 1 and 4): every state
// change of every job or video of the caller's tenant, for staff and admin dashboards.
//
// States and transitions (`ended` is final):
//
//   pending   watched, not confirmed yet: a subscribe is out on the open socket, or the socket
//             is still opening.
//   live      the server answered `subscribed`: every change from now on reaches the feed.
//   lost      the socket went away: changes made meanwhile are not replayed. The feed is
//             subscribed again when the socket returns (and is `live` again once confirmed);
//             whoever needs the missed changes reads them again then (see live-list.ts).
//   refused   the server answered the subscribe with an error (`not_found`: the caller's role
//             may not watch feeds). Not subscribed again until a new socket opens, except for
//             `not_found`, which ends the feed.
//   ended     every watcher stopped, or refused with `not_found`; no traffic at all.
//
// There is no HTTP fallback for a feed: the progress endpoints serve one topic each. A feed
// keeps the newest (epoch, seq) of each item it delivered and drops anything not after it,
// whichever path a state came by.
import { isAfter, type Position } from './subscription.js';
import { parseTopic } from './topics.js';
import type { FeedName, FeedOptions, StateDocument } from './types.js';

export type FeedState = 'pending' | 'live' | 'lost' | 'refused' | 'ended';

/** Items whose last position a feed remembers; past this, the least recently changed go. */
export const FEED_MEMORY = 5000;

export const FEED_NAMES: readonly FeedName[] = ['jobs', 'videos'];

export function isFeedName(value: unknown): value is FeedName {
  return value === 'jobs' || value === 'videos';
}

/** The feed that carries `topic` (`job:…` → `jobs`, `video:…` → `videos`). */
export function feedOf(topic: string): FeedName | undefined {
  const parsed = parseTopic(topic);
  if (parsed === undefined) return undefined;
  return parsed.kind === 'job' ? 'jobs' : 'videos';
}

export interface FeedWatcher extends FeedOptions {
  active: boolean;
}

export class FeedSubscription {
  readonly watchers = new Set<FeedWatcher>();
  private current: FeedState = 'pending';
  private readonly positions = new Map<string, Position>();

  constructor(readonly feed: FeedName) {}

  get state(): FeedState {
    return this.current;
  }

  get ended(): boolean {
    return this.current === 'ended';
  }

  /** Subscribe it when a socket opens: everything but a feed that ended. */
  get wantsSocket(): boolean {
    return this.current !== 'ended';
  }

  /** The newest position delivered for `topic`, if the feed remembers one. */
  last(topic: string): Position | undefined {
    return this.positions.get(topic);
  }

  /** Takes an item's state unless it is not after the last one of that item: true if taken. */
  offer(state: StateDocument): boolean {
    if (this.ended || feedOf(state.topic) !== this.feed) return false;
    const position = { epoch: state.epoch, seq: state.seq };
    const last = this.positions.get(state.topic);
    if (last !== undefined && !isAfter(position, last)) return false;
    // Delete first: the map's order is then the order of the last change, oldest first.
    this.positions.delete(state.topic);
    this.positions.set(state.topic, position);
    if (this.positions.size > FEED_MEMORY) {
      const oldest = this.positions.keys().next().value;
      if (oldest !== undefined) this.positions.delete(oldest);
    }
    return true;
  }

  subscribing(): void {
    if (this.current !== 'ended') this.current = 'pending';
  }

  /** The server answered `subscribed`. */
  served(): void {
    if (this.current !== 'ended') this.current = 'live';
  }

  /** The socket closed; true when the feed was live or about to be. */
  socketLost(): boolean {
    if (this.current !== 'live' && this.current !== 'pending') return false;
    this.current = 'lost';
    return true;
  }

  refused(code: string): void {
    if (this.current === 'ended') return;
    this.current = code === 'not_found' ? 'ended' : 'refused';
  }

  end(): void {
    this.current = 'ended';
  }
}
