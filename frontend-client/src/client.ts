// The browser client's façade: one WebSocket shared by every watch (connection.ts), HTTP
// polling while the socket cannot serve a topic (polling.ts), and one subscription object per
// topic holding its state and the last (epoch, seq) seen (subscription.ts), and one per tenant
// feed (feeds.ts). This file decides what the sources' news means for a topic and tells the
// watchers.
import { SocketConnection, type TopicFrame } from './connection.js';
import { FeedSubscription, feedOf, isFeedName, type FeedWatcher } from './feeds.js';
import { HttpApi, HttpStatusError } from './http.js';
import type {
  JobListItem,
  JobListParams,
  ListPage,
  VideoListItem,
  VideoListParams,
} from './lists.js';
import {
  LiveListController,
  type LiveList,
  type LiveListOptions,
  type LiveListSource,
} from './live-list.js';
import { Poller } from './polling.js';
import { documentOf } from './protocol.js';
import { TopicSubscription, type Watcher } from './subscription.js';
import { TokenSource, describeError } from './token.js';
import { canonicalTopic, isTerminal, stateFromRecord } from './topics.js';
import type {
  ClientOptions,
  ConnectionStatus,
  DetailRecord,
  FeedHandle,
  FeedName,
  FeedOptions,
  Logger,
  RealtimeError,
  StateDocument,
  Timers,
  Topic,
  WatchHandle,
  WatchOptions,
  WebSocketConstructor,
} from './types.js';

const defaultTimers: Timers = {
  // Resolved at call time so that fake timers installed after construction still apply.
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The TTL of a running topic in Redis: a watch this old without a terminal state ends. */
export const DEFAULT_MAX_WATCH_MS = 6 * 60 * 60 * 1000;

const defaultLogger: Logger = {
  warn: (message, ...details) => console.warn(`[realtime] ${message}`, ...details),
};

export class RealtimeClient {
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly http: HttpApi;
  private readonly connection: SocketConnection;
  private readonly poller: Poller;
  private readonly timers: Timers;
  private readonly maxWatchMs: number;
  private readonly subs = new Map<Topic, TopicSubscription>();
  private readonly feeds = new Map<FeedName, FeedSubscription>();
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();
  private closed = false;

  constructor(options: ClientOptions) {
    const baseUrl = options.baseUrl.replace(/\/+$/, '');
    const timers = options.timers ?? defaultTimers;
    const tokens = new TokenSource(options.getToken);
    this.now = options.now ?? (() => Date.now());
    this.timers = timers;
    this.maxWatchMs = options.maxWatchMs ?? DEFAULT_MAX_WATCH_MS;
    this.logger = options.logger ?? defaultLogger;
    this.http = new HttpApi(
      baseUrl,
      options.fetchImpl ?? ((url, init) => globalThis.fetch(url, init)),
      tokens,
    );
    this.connection = new SocketConnection(
      {
        url: options.wsUrl ?? defaultWsUrl(baseUrl),
        WebSocketImpl:
          options.WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket,
        tokens,
        timers,
        random: options.random ?? Math.random,
        logger: this.logger,
        stableAfterMs: options.stableAfterMs ?? 10_000,
        pingIntervalMs: options.pingIntervalMs ?? 25_000,
        pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
        policyRetryMs: options.policyRetryMs ?? 60_000,
        now: this.now,
        minAuthIntervalMs: options.minAuthIntervalMs ?? 10_000,
      },
      {
        wanted: () => !this.closed && (this.subs.size > 0 || this.feeds.size > 0),
        opened: () => {
          for (const sub of this.subs.values()) this.subscribe(sub);
          for (const feed of this.feeds.values()) this.subscribeFeed(feed);
        },
        frame: (frame) => this.topicFrame(frame),
        lost: () => {
          for (const sub of this.subs.values()) {
            sub.socketLost();
            this.poller.schedule(sub);
          }
          for (const feed of this.feeds.values()) {
            if (feed.socketLost()) this.tellFeed(feed, (watcher) => watcher.onLost?.());
          }
        },
        failed: (error) => this.report(this.allWatchers(), error),
        status: (status) => {
          for (const listener of [...this.statusListeners]) this.call(() => listener(status));
        },
      },
    );
    this.poller = new Poller(
      {
        http: this.http,
        timers,
        now: this.now,
        logger: this.logger,
        slowPollMs: options.slowPollMs ?? 10_000,
        maxPollBackoffMs: options.maxPollBackoffMs ?? 30_000,
      },
      {
        state: (sub, state) => this.polledState(sub, state),
        missing: async (sub) => {
          if (sub.missing()) await this.checkRecord(sub);
        },
        error: (sub, error) => this.report([...sub.watchers], error),
      },
    );
  }

  // --- public API ---

  get status(): ConnectionStatus {
    return this.connection.status;
  }

  /** Calls `listener` on every status change; returns the function that stops it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => {
      this.statusListeners.delete(listener);
    };
  }

  /**
   * One page of the caller's jobs, newest first; pass `nextCursor` back as `cursor` for the
   * next. Each row's `topic` can be watched. A refusal rejects with an `ApiError`.
   */
  listJobs(params: JobListParams = {}): Promise<ListPage<JobListItem>> {
    return this.http.listJobs(params);
  }

  /** As `listJobs`, for videos (filter by `sessionId` and `status`). */
  listVideos(params: VideoListParams = {}): Promise<ListPage<VideoListItem>> {
    return this.http.listVideos(params);
  }

  /**
   * Asks a job to stop (`POST /api/v1/jobs/{id}/cancel/`). Resolves with its state document
   * after the request: CANCELLED at once if it was PENDING, else `cancel_requested: true` while
   * its worker stops it (a watch of the job then ends on CANCELLED). Rejects with an `ApiError`:
   * 404 (not yours, or absent), 403 (your role may not), 409 (it has already ended), 503.
   * The state is also handed to a watch of the job, so it sees the request at once.
   */
  cancelJob(jobId: string): Promise<StateDocument> {
    return this.cancel('job', jobId);
  }

  /** As `cancelJob`, for a video (`POST /media/videos/{id}/cancel/`): a running encode is
   * stopped and the video ends CANCELLED. */
  cancelVideo(videoId: string): Promise<StateDocument> {
    return this.cancel('video', videoId);
  }

  private async cancel(kind: 'job' | 'video', id: string): Promise<StateDocument> {
    const topic = canonicalTopic(`${kind}:${id}`);
    if (topic === undefined) throw new TypeError(`not a ${kind} id: ${JSON.stringify(id)}`);
    const state = await this.http.cancel(topic);
    const sub = this.subs.get(topic);
    if (sub !== undefined && state.topic === topic) this.acceptState(sub, state);
    return state;
  }

  /**
   * Watches a topic until its terminal state, `stop()`, or `maxWatchMs`. The topic is taken in
   * its canonical spelling (`JOB:7C9E…`, an id without hyphens or surrounding whitespace all
   * become `job:7c9e…`); a string that names no topic throws a TypeError and nothing is polled.
   */
  watch(input: Topic | string, options: WatchOptions = {}): WatchHandle {
    if (this.closed) throw new Error('RealtimeClient is closed');
    const topic = typeof input === 'string' ? canonicalTopic(input) : undefined;
    if (topic === undefined) {
      throw new TypeError(
        `not a topic: ${JSON.stringify(input)} (expected job:<uuid> or video:<uuid>)`,
      );
    }

    const watcher: Watcher = { ...options, active: true };
    let sub = this.subs.get(topic);
    if (sub === undefined) {
      sub = new TopicSubscription(topic, this.now());
      this.subs.set(topic, sub);
      if (this.connection.isOpen) this.subscribe(sub);
      // Polls only if the socket has not served the topic by the first tick.
      this.poller.schedule(sub);
      this.connection.ensure();
    } else if (sub.lastState !== undefined) {
      // A late watcher sees the current state at once instead of waiting for the next change.
      const state = sub.lastState;
      queueMicrotask(() => {
        if (watcher.active) this.call(() => watcher.onState?.(state));
      });
    }
    sub.watchers.add(watcher);
    const owner = sub;
    if (this.maxWatchMs > 0) {
      watcher.deadline = this.timers.setTimeout(() => {
        watcher.deadline = undefined;
        this.expire(owner, watcher);
      }, this.maxWatchMs);
    }
    return { stop: () => this.unwatch(owner, watcher) };
  }

  /**
   * Watches a tenant feed (`jobs` or `videos`, staff and admin only): every state of every
   * job or video of the tenant, each item's in strictly increasing (epoch, seq) order, over the
   * same socket as the watches. There is no polling fallback: `onLost` says when changes may
   * be missed and `onLive` when they flow again (`liveList` reads the list again then). A role
   * that may not watch feeds gets `onError` with `not_found`, and the feed stops.
   */
  watchFeed(feed: FeedName, options: FeedOptions = {}): FeedHandle {
    if (this.closed) throw new Error('RealtimeClient is closed');
    if (!isFeedName(feed)) {
      throw new TypeError(`not a feed: ${JSON.stringify(feed)} (expected "jobs" or "videos")`);
    }
    const watcher: FeedWatcher = { ...options, active: true };
    let sub = this.feeds.get(feed);
    if (sub === undefined) {
      sub = new FeedSubscription(feed);
      this.feeds.set(feed, sub);
      if (this.connection.isOpen) this.subscribeFeed(sub);
      this.connection.ensure();
      // The socket is down and not about to open: the feed misses changes until it returns.
      const status = this.connection.status;
      if (!this.connection.isOpen && (status === 'polling' || status === 'reconnecting')) {
        sub.socketLost();
      }
    }
    sub.watchers.add(watcher);
    const owner = sub;
    if (owner.state === 'live' || owner.state === 'lost') {
      // A watcher hears where the feed stands, as later ones would from the transitions.
      queueMicrotask(() => {
        if (!watcher.active) return;
        this.call(() => (owner.state === 'live' ? watcher.onLive?.() : watcher.onLost?.()));
      });
    }
    return { stop: () => this.unwatchFeed(owner, watcher) };
  }

  /**
   * One page of the job list kept live (live-list.ts): the `jobs` feed for staff and admin,
   * each row's own watch for other roles (by default the feed is tried first).
   */
  liveJobs(
    options: LiveListOptions<JobListParams, JobListItem> = {},
  ): LiveList<JobListItem> {
    return new LiveListController('jobs', this.listSource((p: JobListParams) => this.listJobs(p)), options);
  }

  /** As `liveJobs`, for videos and the `videos` feed. */
  liveVideos(
    options: LiveListOptions<VideoListParams, VideoListItem> = {},
  ): LiveList<VideoListItem> {
    return new LiveListController('videos', this.listSource((p: VideoListParams) => this.listVideos(p)), options);
  }

  /** Stops every watch, the socket and all polling. The client cannot be used again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs.values()) {
      sub.end();
      this.poller.forget(sub);
      for (const watcher of sub.watchers) this.deactivate(watcher);
    }
    this.subs.clear();
    for (const feed of this.feeds.values()) {
      feed.end();
      for (const watcher of feed.watchers) watcher.active = false;
    }
    this.feeds.clear();
    this.connection.close();
  }

  // --- what the sources report ---

  private subscribe(sub: TopicSubscription): void {
    sub.subscribing();
    const last = sub.last;
    this.connection.send(
      last === undefined
        ? { type: 'subscribe', topic: sub.topic }
        : { type: 'subscribe', topic: sub.topic, since: last.seq, epoch: last.epoch },
    );
  }

  private topicFrame(frame: TopicFrame): void {
    const topic = typeof frame.topic === 'string' ? frame.topic : undefined;
    if (isFeedName(topic)) {
      this.feedFrame(topic, frame);
      return;
    }
    const sub = topic === undefined ? undefined : this.subs.get(topic as Topic);
    switch (frame.type) {
      case 'state':
        // The server sends a state once per subscription that carries it (the topic's own, its
        // feed's): each one takes what is new to it.
        this.feedState(frame);
        if (sub === undefined) return;
        this.servedBySocket(sub);
        this.acceptState(sub, documentOf(frame));
        return;
      case 'subscribed':
        if (sub !== undefined) this.servedBySocket(sub);
        return;
      case 'error':
        if (sub === undefined) {
          this.logger.warn(`server error ${frame.code}: ${frame.detail ?? ''}`);
          return;
        }
        // The server will not serve the topic: poll it instead, and say why.
        if (sub.refused(frame.code)) {
          void this.checkRecord(sub);
        } else if (frame.code !== 'not_found') {
          this.report([...sub.watchers], {
            code: frame.code,
            message: frame.detail ?? frame.code,
            topic: sub.topic,
          });
        }
        this.poller.schedule(sub);
    }
  }

  /** The socket serves this topic now: polling for it stops. */
  private servedBySocket(sub: TopicSubscription): void {
    if (sub.ended) return;
    sub.served();
    this.poller.pause(sub);
  }

  private polledState(sub: TopicSubscription, state: StateDocument): void {
    sub.found();
    this.acceptState(sub, state);
    // The socket refused the topic earlier, yet it exists now: let the socket serve it.
    if (!sub.ended && sub.refusedBySocket && this.connection.isOpen) this.subscribe(sub);
  }

  // --- watches ---

  private unwatch(sub: TopicSubscription, watcher: Watcher): void {
    if (!watcher.active) return;
    this.deactivate(watcher);
    sub.watchers.delete(watcher);
    if (sub.watchers.size > 0 || sub.ended) return;
    this.endSubscription(sub);
    this.releaseSocketIfUnused();
  }

  /**
   * The watch is `maxWatchMs` old and its topic is not terminal (audit F15: a topic Redis lost
   * or that never ran would be polled forever): tell the watcher, then stop it like `stop()`.
   */
  private expire(sub: TopicSubscription, watcher: Watcher): void {
    if (!watcher.active || sub.ended) return;
    this.report([watcher], {
      code: 'watch_expired',
      message: `${sub.topic} did not end within ${this.maxWatchMs} ms of watching: watch stopped`,
      topic: sub.topic,
    });
    this.unwatch(sub, watcher);
  }

  /** The watcher hears nothing more, and its deadline is cancelled. */
  private deactivate(watcher: Watcher): void {
    watcher.active = false;
    this.clearDeadline(watcher);
  }

  private clearDeadline(watcher: Watcher): void {
    if (watcher.deadline === undefined) return;
    this.timers.clearTimeout(watcher.deadline);
    watcher.deadline = undefined;
  }

  /** No further traffic for this topic: no polls, and the server stops sending it. */
  private endSubscription(sub: TopicSubscription): void {
    const refused = sub.refusedBySocket;
    sub.end();
    this.poller.forget(sub);
    if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
    if (this.connection.isOpen && !refused) {
      this.connection.send({ type: 'unsubscribe', topic: sub.topic });
    }
  }

  /** Applies a state from any source, dropping it unless it comes after the last one seen. */
  private acceptState(sub: TopicSubscription, state: StateDocument): void {
    if (sub.ended) return;
    if (!sub.offer(state)) {
      const last = sub.last;
      this.logger.debug?.(
        `drop ${sub.topic} (${state.epoch}, ${state.seq}) <= (${last?.epoch}, ${last?.seq})`,
      );
      return;
    }
    this.notify(sub, state);
    if (isTerminal(state.status)) this.finish(sub, state);
  }

  private notify(sub: TopicSubscription, state: StateDocument): void {
    for (const watcher of [...sub.watchers]) {
      if (watcher.active) this.call(() => watcher.onState?.(state));
    }
  }

  /**
   * Ends the topic on its terminal state: silence first, then at most one detail call, then
   * onDone. `record` is passed when the detail call was already made (the not-found path).
   */
  private finish(sub: TopicSubscription, state: StateDocument, record?: DetailRecord): void {
    if (sub.ended) return;
    const watchers = [...sub.watchers];
    this.endSubscription(sub);
    this.releaseSocketIfUnused();
    // The terminal state came in time: the detail call below is not cut short by a deadline.
    for (const watcher of watchers) this.clearDeadline(watcher);

    const deliver = (found: DetailRecord | undefined): void => {
      for (const watcher of watchers) {
        if (!watcher.active) continue;
        this.deactivate(watcher);
        this.call(() => watcher.onDone?.(state, found));
      }
    };
    const wantRecord = state.result_in_db === true || watchers.some((w) => w.fetchRecord === true);
    if (record !== undefined || !wantRecord) {
      deliver(record);
      return;
    }
    void this.http.detail(sub.topic).then(
      (found) => deliver(found),
      (error: unknown) => {
        this.report(watchers, {
          code: 'detail_failed',
          message: `detail call failed: ${describeError(error)}`,
          topic: sub.topic,
          ...(error instanceof HttpStatusError && { httpStatus: error.status }),
        });
        deliver(undefined);
      },
    );
  }

  /**
   * Redis holds nothing for the topic: one detail call tells whether it ended long ago
   * (finish with the record) or is unknown (report, and keep polling slowly).
   */
  private async checkRecord(sub: TopicSubscription): Promise<void> {
    let record: DetailRecord | undefined;
    try {
      record = await this.http.detail(sub.topic);
    } catch (error) {
      this.logger.debug?.(`detail of ${sub.topic}: ${describeError(error)}`);
    }
    if (sub.ended) return;
    if (record !== undefined && isTerminal(record.status)) {
      const state = stateFromRecord(sub.topic, record, sub.last, this.now());
      sub.lastState = state;
      this.notify(sub, state);
      this.finish(sub, state, record);
      return;
    }
    this.report([...sub.watchers], {
      code: 'not_found',
      message: `${sub.topic} is not known`,
      topic: sub.topic,
    });
  }

  // --- feeds ---

  private listSource<Params, Row>(
    list: (params: Params) => Promise<ListPage<Row>>,
  ): LiveListSource<Params, Row> {
    return {
      list,
      watchFeed: (feed, options) => this.watchFeed(feed, options),
      watch: (topic, options) => this.watch(topic, options),
      timers: this.timers,
    };
  }

  private subscribeFeed(feed: FeedSubscription): void {
    if (!feed.wantsSocket) return;
    feed.subscribing();
    this.connection.send({ type: 'subscribe', topic: feed.feed });
  }

  private feedFrame(name: FeedName, frame: TopicFrame): void {
    const feed = this.feeds.get(name);
    if (feed === undefined || feed.ended) return;
    if (frame.type === 'subscribed') {
      feed.served();
      this.tellFeed(feed, (watcher) => watcher.onLive?.());
    } else if (frame.type === 'error') {
      feed.refused(frame.code);
      const error: RealtimeError = {
        code: frame.code,
        message: frame.detail ?? frame.code,
        topic: name,
      };
      const watchers = [...feed.watchers].filter((watcher) => watcher.active);
      this.logger.warn(`${error.code}: feed ${name}: ${error.message}`);
      if (feed.ended) this.endFeed(feed, false);
      for (const watcher of watchers) this.call(() => watcher.onError?.(error));
    }
  }

  private feedState(frame: Extract<TopicFrame, { type: 'state' }>): void {
    const name = feedOf(frame.topic);
    const feed = name === undefined ? undefined : this.feeds.get(name);
    if (feed === undefined) return;
    const state = documentOf(frame);
    if (feed.offer(state)) this.tellFeed(feed, (watcher) => watcher.onState?.(state));
  }

  private tellFeed(feed: FeedSubscription, callback: (watcher: FeedWatcher) => void): void {
    for (const watcher of [...feed.watchers]) {
      if (watcher.active) this.call(() => callback(watcher));
    }
  }

  private unwatchFeed(feed: FeedSubscription, watcher: FeedWatcher): void {
    if (!watcher.active) return;
    watcher.active = false;
    feed.watchers.delete(watcher);
    if (feed.watchers.size > 0 || feed.ended) return;
    this.endFeed(feed, true);
  }

  /** No further traffic for this feed; `unsubscribe` unless the server refused it. */
  private endFeed(feed: FeedSubscription, unsubscribe: boolean): void {
    feed.end();
    for (const watcher of feed.watchers) watcher.active = false;
    if (this.feeds.get(feed.feed) === feed) this.feeds.delete(feed.feed);
    if (unsubscribe && this.connection.isOpen) {
      this.connection.send({ type: 'unsubscribe', topic: feed.feed });
    }
    this.releaseSocketIfUnused();
  }

  private releaseSocketIfUnused(): void {
    if (this.subs.size > 0 || this.feeds.size > 0 || this.closed) return;
    this.connection.release();
  }

  // --- small helpers ---

  private allWatchers(): Watcher[] {
    return [...this.subs.values()].flatMap((sub) => [...sub.watchers]);
  }

  private report(watchers: Watcher[], error: RealtimeError): void {
    this.logger.warn(`${error.code}: ${error.message}`);
    for (const watcher of watchers) {
      if (watcher.active) this.call(() => watcher.onError?.(error));
    }
  }

  /** A throwing callback must not break the client for the other watchers. */
  private call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.logger.warn(`callback threw: ${describeError(error)}`);
    }
  }
}

/** `https://host/prefix` → `wss://host/prefix/ws/v1/`; '' → this page's origin. */
export function defaultWsUrl(baseUrl: string): string {
  const origin = baseUrl || (globalThis as { location?: { origin: string } }).location?.origin;
  if (!origin) throw new Error('wsUrl is required when baseUrl is empty outside a browser');
  return `${origin.replace(/^http/, 'ws')}/ws/v1/`;
}
