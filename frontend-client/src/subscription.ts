// One watched topic: its watchers, the last state seen, and which source serves it now.
//
// States and transitions (`ended` is final; every transition out of it is a no-op):
//
//   pending    watched, not served yet: a subscribe is out on the open socket, or the socket is
//              still opening. A fallback poll is scheduled in case the answer is slow.
//   live       the socket serves it (it answered `state` or `subscribed`); nothing is polled.
//   polling    the socket cannot serve it: the socket is down or given up, or the server
//              answered its subscribe with an error. HTTP polling serves it.
//   not_found  Redis holds nothing for it (an error frame or a 404); its one detail call is
//              made, and it is polled slowly until it exists.
//   ended      terminal state delivered, or every watcher stopped; no traffic at all.
//
//   pending | polling        --subscribing()-->  pending   (not_found stays not_found)
//   any but ended            --served()------->  live
//   live | pending           --socketLost()--->  polling
//   any but ended            --refused(code)-->  not_found for `not_found`, else polling
//   any but ended            --missing()------>  not_found
//   not_found                --found()-------->  polling
//   any                      --end()---------->  ended
//
// States are ordered by (epoch, seq): a state Redis rebuilt after losing the topic starts again
// at seq 1 of a larger epoch and is taken over any seq of an older epoch; within an epoch, seq
// must grow.
//
// Beside the state, `refusedBySocket` records the socket's answer to the last subscribe: an
// error frame. A refused topic gets no unsubscribe when it ends, and is subscribed again when
// polling finds it exists; a new subscribe or a `state`/`subscribed` answer clears it.
import type { StateDocument, Topic, WatchOptions } from './types.js';

/** Where a state stands in its topic's history. */
export interface Position {
  epoch: number;
  seq: number;
}

/** True when `a` comes after `b`. */
export function isAfter(a: Position, b: Position): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.seq > b.seq);
}

export type TopicState = 'pending' | 'live' | 'polling' | 'not_found' | 'ended';

export interface Watcher extends WatchOptions {
  active: boolean;
  /** The timer that ends the watch at `maxWatchMs`, while it runs. */
  deadline?: unknown;
}

export class TopicSubscription {
  readonly watchers = new Set<Watcher>();
  /** The last state delivered: handed to late watchers; its position is sent on subscribe. */
  lastState: StateDocument | undefined;
  private current: TopicState = 'pending';
  private position: Position | undefined;
  private refusal = false;

  constructor(
    readonly topic: Topic,
    /** Start of the watch: the adaptive poll schedule counts from here. */
    readonly startedAt: number,
  ) {}

  get state(): TopicState {
    return this.current;
  }

  get ended(): boolean {
    return this.current === 'ended';
  }

  /** HTTP polling serves the topic unless the socket does or it is over. */
  get wantsPolling(): boolean {
    return this.current !== 'live' && this.current !== 'ended';
  }

  /** The open socket answered this topic's last subscribe with an error. */
  get refusedBySocket(): boolean {
    return this.refusal;
  }

  /** The (epoch, seq) of the newest state delivered to the watchers. */
  get last(): Position | undefined {
    return this.position;
  }

  /** Takes a state from any source unless it is not after the last one: true if taken. */
  offer(state: StateDocument): boolean {
    const position = { epoch: state.epoch, seq: state.seq };
    if (this.ended || (this.position !== undefined && !isAfter(position, this.position))) {
      return false;
    }
    this.position = position;
    this.lastState = state;
    return true;
  }

  /** A subscribe goes out on the open socket. */
  subscribing(): void {
    this.refusal = false;
    if (this.current === 'pending' || this.current === 'polling') this.current = 'pending';
  }

  /** The socket answered `state` or `subscribed`. */
  served(): void {
    if (this.ended) return;
    this.current = 'live';
    this.refusal = false;
  }

  /** The socket no longer serves anything. */
  socketLost(): void {
    if (this.current === 'live' || this.current === 'pending') this.current = 'polling';
  }

  /** The server answered the subscribe with an error; true when this made it `not_found`. */
  refused(code: string): boolean {
    if (this.ended) return false;
    this.refusal = true;
    if (code === 'not_found') return this.missing();
    this.current = 'polling';
    return false;
  }

  /** Redis holds nothing for the topic; true when it was not known to be missing before. */
  missing(): boolean {
    if (this.ended || this.current === 'not_found') return false;
    this.current = 'not_found';
    return true;
  }

  /** A progress answer brought a state: the topic exists after all. */
  found(): void {
    if (this.current === 'not_found') this.current = 'polling';
  }

  end(): void {
    this.current = 'ended';
  }
}
