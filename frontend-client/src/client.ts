// The browser client: one WebSocket shared by every watch, HTTP polling while the socket
// cannot serve a topic, and one source of truth per topic (the last seq seen).
import { Backoff } from './backoff.js';
import { parseRetryAfter, pollInterval } from './schedule.js';
import { detailPath, isTerminal, isTopic, progressPath, stateFromRecord } from './topics.js';
import type {
  ClientFrame,
  ClientOptions,
  ConnectionStatus,
  DetailRecord,
  FetchLike,
  Logger,
  RealtimeError,
  ServerFrame,
  StateDocument,
  Timers,
  Topic,
  WatchHandle,
  WatchOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

const SUBPROTOCOL = 'realtime.v1';
const CLOSE_NORMAL = 1000;
const CLOSE_ABNORMAL = 1006;
const CLOSE_UNAUTHENTICATED = 4001;
const CLOSE_ORIGIN = 4003;
const CLOSE_POLICY = 4008;
/** Client-chosen code for a socket that stopped answering pings (4000-4999 are free for use). */
const CLOSE_PONG_TIMEOUT = 4000;

interface Watcher extends WatchOptions {
  active: boolean;
}

/** Everything the client knows about one watched topic; shared by its watchers. */
interface Subscription {
  readonly topic: Topic;
  readonly watchers: Set<Watcher>;
  /** Start of the watch: the adaptive poll schedule counts from here. */
  readonly startedAt: number;
  lastSeq: number | undefined;
  lastState: StateDocument | undefined;
  /** The current socket serves this topic (it answered `subscribed` or `state`). */
  live: boolean;
  /** The server answered an error frame to our subscribe: the socket does not serve it. */
  rejected: boolean;
  /** Redis holds nothing for this topic; its one detail call is made. */
  notFound: boolean;
  /** Poll interval override after 503 or a failed request; cleared by a good answer. */
  penaltyMs: number | undefined;
  pollTimer: unknown;
  pollInFlight: boolean;
  ended: boolean;
}

interface HttpAnswer {
  status: number;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** getToken() failed: reported as `auth_failed`, unlike a network failure. */
class TokenError extends Error {}

/** A detail endpoint answered something other than 200. */
class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

const defaultTimers: Timers = {
  // Resolved at call time so that fake timers installed after construction still apply.
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

const defaultLogger: Logger = {
  warn: (message, ...details) => console.warn(`[realtime] ${message}`, ...details),
};

export class RealtimeClient {
  private readonly baseUrl: string;
  private readonly wsUrl: string;
  private readonly getToken: ClientOptions['getToken'];
  private readonly WebSocketImpl: WebSocketConstructor | undefined;
  private readonly fetchImpl: FetchLike;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly stableAfterMs: number;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private readonly policyRetryMs: number;
  private readonly slowPollMs: number;
  private readonly maxPollBackoffMs: number;

  private readonly subs = new Map<Topic, Subscription>();
  private readonly statusListeners = new Set<(status: ConnectionStatus) => void>();
  private currentStatus: ConnectionStatus = 'idle';
  private closed = false;

  private ws: WebSocketLike | undefined;
  private socketOpen = false;
  /** Waiting for getToken() before opening a socket. */
  private opening = false;
  /** The next opening must ask for a new token (the last one was refused with 4001). */
  private needFreshToken = false;
  /** Close 4003: the origin will not change, so the socket is not tried again. */
  private socketDisabled = false;
  /** The socket was lost since the last stable connection: report `reconnecting`. */
  private lost = false;
  private reconnectTimer: unknown;
  private stableTimer: unknown;
  private pingTimer: unknown;
  private pongTimer: unknown;
  private refreshing: Promise<string> | undefined;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.wsUrl = options.wsUrl ?? defaultWsUrl(this.baseUrl);
    this.getToken = options.getToken;
    this.WebSocketImpl =
      options.WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.fetchImpl = options.fetchImpl ?? ((url, init) => globalThis.fetch(url, init));
    this.now = options.now ?? (() => Date.now());
    this.timers = options.timers ?? defaultTimers;
    this.logger = options.logger ?? defaultLogger;
    this.backoff = new Backoff(options.random ?? Math.random);
    this.stableAfterMs = options.stableAfterMs ?? 10_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 25_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10_000;
    this.policyRetryMs = options.policyRetryMs ?? 60_000;
    this.slowPollMs = options.slowPollMs ?? 10_000;
    this.maxPollBackoffMs = options.maxPollBackoffMs ?? 30_000;
    if (this.WebSocketImpl === undefined) this.socketDisabled = true;
  }

  // --- public API ---

  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** Calls `listener` on every status change; returns the function that stops it. */
  onStatus(listener: (status: ConnectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => {
      this.statusListeners.delete(listener);
    };
  }

  watch(topic: Topic, options: WatchOptions = {}): WatchHandle {
    if (this.closed) throw new Error('RealtimeClient is closed');
    if (!isTopic(topic)) throw new TypeError(`not a topic: ${String(topic)}`);

    const watcher: Watcher = { ...options, active: true };
    let sub = this.subs.get(topic);
    if (sub === undefined) {
      sub = newSubscription(topic, this.now());
      this.subs.set(topic, sub);
      if (this.socketOpen) this.sendSubscribe(sub);
      // Polls only if the socket has not served the topic by the first tick.
      this.schedulePoll(sub);
      this.ensureSocket();
    } else if (sub.lastState !== undefined) {
      // A late watcher sees the current state at once instead of waiting for the next change.
      const state = sub.lastState;
      queueMicrotask(() => {
        if (watcher.active) this.call(() => watcher.onState?.(state));
      });
    }
    sub.watchers.add(watcher);
    const owner = sub;
    return { stop: () => this.unwatch(owner, watcher) };
  }

  /** Stops every watch, the socket and all polling. The client cannot be used again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs.values()) {
      sub.ended = true;
      this.stopPolling(sub);
      for (const watcher of sub.watchers) watcher.active = false;
    }
    this.subs.clear();
    this.dropSocket(CLOSE_NORMAL);
    this.setStatus('idle');
  }

  // --- watches ---

  private unwatch(sub: Subscription, watcher: Watcher): void {
    if (!watcher.active) return;
    watcher.active = false;
    sub.watchers.delete(watcher);
    if (sub.watchers.size > 0 || sub.ended) return;
    this.endSubscription(sub);
    this.releaseSocketIfUnused();
  }

  /** No further traffic for this topic: no polls, and the server stops sending it. */
  private endSubscription(sub: Subscription): void {
    sub.ended = true;
    this.stopPolling(sub);
    if (this.subs.get(sub.topic) === sub) this.subs.delete(sub.topic);
    if (this.socketOpen && !sub.rejected) this.send({ type: 'unsubscribe', topic: sub.topic });
  }

  /** Applies a state from any source, dropping it unless its seq is above the last one seen. */
  private acceptState(sub: Subscription, state: StateDocument): void {
    if (sub.ended || typeof state.seq !== 'number') return;
    if (sub.lastSeq !== undefined && state.seq <= sub.lastSeq) {
      this.logger.debug?.(`drop ${sub.topic} seq ${state.seq} <= ${sub.lastSeq}`);
      return;
    }
    sub.lastSeq = state.seq;
    sub.lastState = state;
    for (const watcher of [...sub.watchers]) {
      if (watcher.active) this.call(() => watcher.onState?.(state));
    }
    if (isTerminal(state.status)) this.finish(sub, state);
  }

  /**
   * Ends the topic on its terminal state: silence first, then at most one detail call, then
   * onDone. `record` is passed when the detail call was already made (the not-found path).
   */
  private finish(sub: Subscription, state: StateDocument, record?: DetailRecord): void {
    if (sub.ended) return;
    const watchers = [...sub.watchers];
    this.endSubscription(sub);
    this.releaseSocketIfUnused();

    const deliver = (found: DetailRecord | undefined): void => {
      for (const watcher of watchers) {
        if (!watcher.active) continue;
        watcher.active = false;
        this.call(() => watcher.onDone?.(state, found));
      }
    };
    const wantRecord = state.result_in_db === true || watchers.some((w) => w.fetchRecord === true);
    if (record !== undefined || !wantRecord) {
      deliver(record);
      return;
    }
    void this.fetchDetail(sub.topic).then(
      (found) => deliver(found),
      (error: unknown) => {
        this.report(watchers, {
          code: 'detail_failed',
          message: `detail call failed: ${describe(error)}`,
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
  private async checkRecord(sub: Subscription): Promise<void> {
    let record: DetailRecord | undefined;
    try {
      record = await this.fetchDetail(sub.topic);
    } catch (error) {
      this.logger.debug?.(`detail of ${sub.topic}: ${describe(error)}`);
    }
    if (sub.ended) return;
    if (record !== undefined && isTerminal(record.status)) {
      const state = stateFromRecord(sub.topic, record, sub.lastSeq ?? 0, this.now());
      sub.lastState = state;
      for (const watcher of [...sub.watchers]) {
        if (watcher.active) this.call(() => watcher.onState?.(state));
      }
      this.finish(sub, state, record);
      return;
    }
    this.report([...sub.watchers], {
      code: 'not_found',
      message: `${sub.topic} is not known`,
      topic: sub.topic,
    });
  }

  // --- HTTP polling ---

  private schedulePoll(sub: Subscription): void {
    if (sub.ended || sub.live || this.closed || sub.pollTimer !== undefined || sub.pollInFlight) {
      return;
    }
    sub.pollTimer = this.timers.setTimeout(() => {
      sub.pollTimer = undefined;
      void this.poll(sub);
    }, this.nextPollDelay(sub));
  }

  private nextPollDelay(sub: Subscription): number {
    if (sub.penaltyMs !== undefined) return sub.penaltyMs;
    if (sub.notFound) return this.slowPollMs;
    return pollInterval(this.now() - sub.startedAt);
  }

  private stopPolling(sub: Subscription): void {
    if (sub.pollTimer === undefined) return;
    this.timers.clearTimeout(sub.pollTimer);
    sub.pollTimer = undefined;
  }

  private async poll(sub: Subscription): Promise<void> {
    if (sub.ended || sub.live) return;
    sub.pollInFlight = true;
    try {
      const answer = await this.request(progressPath(sub.topic));
      if (sub.ended) return;
      await this.handleProgressAnswer(sub, answer);
    } catch (error) {
      if (sub.ended) return;
      if (error instanceof TokenError) {
        this.report([...sub.watchers], {
          code: 'auth_failed',
          message: error.message,
          topic: sub.topic,
        });
      } else {
        this.logger.warn(`polling ${sub.topic} failed: ${describe(error)}`);
      }
      this.penalise(sub);
    } finally {
      sub.pollInFlight = false;
      this.schedulePoll(sub);
    }
  }

  private async handleProgressAnswer(sub: Subscription, answer: HttpAnswer): Promise<void> {
    switch (answer.status) {
      case 200: {
        const state = (await answer.json()) as StateDocument;
        sub.penaltyMs = undefined;
        sub.notFound = false;
        this.acceptState(sub, state);
        // The socket refused the topic earlier, yet it exists now: let the socket serve it.
        if (!sub.ended && sub.rejected && this.socketOpen) this.sendSubscribe(sub);
        return;
      }
      case 404:
        sub.penaltyMs = undefined;
        if (!sub.notFound) {
          sub.notFound = true;
          await this.checkRecord(sub);
        }
        return;
      case 503:
        this.penalise(sub, parseRetryAfter(answer.headers.get('Retry-After'), this.now()));
        return;
      case 401:
        this.report([...sub.watchers], {
          code: 'auth_failed',
          message: 'the server refused a fresh token',
          topic: sub.topic,
          httpStatus: 401,
        });
        this.penalise(sub);
        return;
      default:
        this.report([...sub.watchers], {
          code: 'http_error',
          message: `progress answered HTTP ${answer.status}`,
          topic: sub.topic,
          httpStatus: answer.status,
        });
        this.penalise(sub);
    }
  }

  /** Slows polling down: the server's Retry-After, else double the interval, capped. */
  private penalise(sub: Subscription, retryAfterMs?: number): void {
    const current = sub.penaltyMs ?? pollInterval(this.now() - sub.startedAt);
    sub.penaltyMs = retryAfterMs ?? Math.min(this.maxPollBackoffMs, current * 2);
  }

  private async fetchDetail(topic: Topic): Promise<DetailRecord> {
    const answer = await this.request(detailPath(topic));
    if (answer.status !== 200) throw new HttpStatusError(answer.status);
    return (await answer.json()) as DetailRecord;
  }

  /** GET with the bearer token; a 401 gets one retry with a fresh token. */
  private async request(path: string): Promise<HttpAnswer> {
    const get = (token: string): Promise<HttpAnswer> =>
      this.fetchImpl(this.baseUrl + path, {
        method: 'GET',
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
    const answer = await get(await this.token(false));
    if (answer.status !== 401) return answer;
    return get(await this.token(true));
  }

  private token(refresh: boolean): Promise<string> {
    if (!refresh) return this.getToken({ refresh: false }).catch(tokenFailure);
    // Several topics may hit 401 at once: one refresh serves them all.
    if (this.refreshing === undefined) {
      const pending = this.getToken({ refresh: true })
        .catch(tokenFailure)
        .finally(() => {
          if (this.refreshing === pending) this.refreshing = undefined;
        });
      this.refreshing = pending;
    }
    return this.refreshing;
  }

  // --- WebSocket ---

  private ensureSocket(): void {
    if (this.closed || this.subs.size === 0) return;
    if (this.socketDisabled) {
      this.setStatus('polling');
      return;
    }
    if (this.ws !== undefined || this.opening || this.reconnectTimer !== undefined) return;
    void this.openSocket();
  }

  private async openSocket(): Promise<void> {
    this.opening = true;
    this.setStatus(this.lost ? 'reconnecting' : 'connecting');
    let token: string;
    try {
      token = await this.token(this.needFreshToken);
      this.needFreshToken = false;
    } catch (error) {
      this.opening = false;
      if (this.closed || this.subs.size === 0) return;
      this.report(this.allWatchers(), { code: 'auth_failed', message: describe(error) });
      this.socketGone(CLOSE_ABNORMAL);
      return;
    }
    this.opening = false;
    // Everything may have stopped (and started again) while the token was coming.
    if (this.closed || this.subs.size === 0 || this.ws !== undefined) return;
    this.setStatus(this.lost ? 'reconnecting' : 'connecting');

    let ws: WebSocketLike;
    try {
      ws = new (this.WebSocketImpl as WebSocketConstructor)(this.wsUrl, [
        SUBPROTOCOL,
        `bearer.${token}`,
      ]);
    } catch (error) {
      this.logger.warn(`cannot open ${this.wsUrl}: ${describe(error)}`);
      this.socketGone(CLOSE_ABNORMAL);
      return;
    }
    this.ws = ws;
    // Handlers of a replaced socket must not touch the client any more.
    ws.onopen = () => {
      if (this.ws === ws) this.handleOpen();
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this.handleMessage(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.socketGone(event.code);
    };
    ws.onerror = () => {
      // A close event always follows; it carries the code that decides what to do.
    };
  }

  private handleOpen(): void {
    this.socketOpen = true;
    this.setStatus('connected');
    this.stableTimer = this.timers.setTimeout(() => {
      this.stableTimer = undefined;
      this.backoff.reset();
      this.lost = false;
    }, this.stableAfterMs);
    this.armPing();
    for (const sub of this.subs.values()) this.sendSubscribe(sub);
  }

  private sendSubscribe(sub: Subscription): void {
    sub.rejected = false;
    const frame: ClientFrame =
      sub.lastSeq === undefined
        ? { type: 'subscribe', topic: sub.topic }
        : { type: 'subscribe', topic: sub.topic, since: sub.lastSeq };
    this.send(frame);
  }

  private handleMessage(data: unknown): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(String(data)) as ServerFrame;
    } catch {
      this.logger.warn('unreadable frame dropped');
      return;
    }
    if (typeof frame !== 'object' || frame === null || typeof frame.type !== 'string') return;
    this.armPing();

    switch (frame.type) {
      case 'state': {
        const sub = this.subs.get(frame.topic as Topic);
        if (sub === undefined) return;
        const { type, ...state } = frame;
        void type;
        this.markLive(sub);
        this.acceptState(sub, state);
        return;
      }
      case 'subscribed': {
        const sub = this.subs.get(frame.topic as Topic);
        if (sub !== undefined) this.markLive(sub);
        return;
      }
      case 'error': {
        const sub = frame.topic === undefined ? undefined : this.subs.get(frame.topic as Topic);
        if (sub === undefined) {
          this.logger.warn(`server error ${frame.code}: ${frame.detail ?? ''}`);
          return;
        }
        this.handleTopicError(sub, frame.code, frame.detail);
        return;
      }
      case 'token_expiring':
        void this.renewSocketToken();
        return;
      case 'auth_ok':
      case 'unsubscribed':
      case 'pong':
        return;
      default:
        this.logger.debug?.(`unknown frame ${(frame as { type: string }).type}`);
    }
  }

  /** The socket serves this topic now: polling for it stops. */
  private markLive(sub: Subscription): void {
    sub.live = true;
    sub.rejected = false;
    sub.notFound = false;
    sub.penaltyMs = undefined;
    this.stopPolling(sub);
  }

  /** The server would not serve the topic: poll it instead, and say why. */
  private handleTopicError(sub: Subscription, code: RealtimeError['code'], detail?: string): void {
    sub.live = false;
    sub.rejected = true;
    if (code === 'not_found') {
      if (!sub.notFound) {
        sub.notFound = true;
        void this.checkRecord(sub);
      }
    } else {
      this.report([...sub.watchers], { code, message: detail ?? code, topic: sub.topic });
    }
    this.schedulePoll(sub);
  }

  private async renewSocketToken(): Promise<void> {
    let token: string;
    try {
      token = await this.token(true);
    } catch (error) {
      // The server closes with 4001 at expiry; the reconnect asks for a token again.
      this.report(this.allWatchers(), { code: 'auth_failed', message: describe(error) });
      return;
    }
    if (this.socketOpen) this.send({ type: 'auth', token });
  }

  /** Sends a ping after a quiet interval; a socket that then stays silent is dead. */
  private armPing(): void {
    this.clearTimer('pongTimer');
    this.clearTimer('pingTimer');
    if (this.pingIntervalMs <= 0) return;
    this.pingTimer = this.timers.setTimeout(() => {
      this.pingTimer = undefined;
      this.pongTimer = this.timers.setTimeout(() => {
        this.pongTimer = undefined;
        this.logger.warn('no answer to ping: reconnecting');
        this.socketGone(CLOSE_PONG_TIMEOUT);
      }, this.pongTimeoutMs);
      this.send({ type: 'ping' });
    }, this.pingIntervalMs);
  }

  /**
   * The socket closed, failed to open or was given up. Decides by close code whether and when
   * to reconnect, and meanwhile polls every watched topic.
   */
  private socketGone(code: number): void {
    // Only a socket we gave up on is still open; a closed one needs no close() call.
    this.dropSocket(code === CLOSE_PONG_TIMEOUT ? CLOSE_PONG_TIMEOUT : undefined);
    if (this.closed) return;
    if (this.subs.size === 0) {
      this.setStatus('idle');
      return;
    }
    this.lost = true;
    switch (code) {
      case CLOSE_UNAUTHENTICATED:
        this.needFreshToken = true;
        this.scheduleReconnect(this.backoff.next());
        break;
      case CLOSE_ORIGIN:
        // The page's origin will not become acceptable by retrying.
        this.socketDisabled = true;
        this.report(this.allWatchers(), {
          code: 'origin_refused',
          message: 'WebSocket origin refused (4003)',
        });
        this.setStatus('polling');
        break;
      case CLOSE_POLICY:
        this.backoff.next();
        this.report(this.allWatchers(), {
          code: 'policy_violation',
          message: 'WebSocket closed for a policy violation (4008)',
        });
        this.scheduleReconnect(this.policyRetryMs, 'polling');
        break;
      default:
        this.scheduleReconnect(this.backoff.next());
    }
    for (const sub of this.subs.values()) this.schedulePoll(sub);
  }

  private scheduleReconnect(delayMs: number, status: ConnectionStatus = 'reconnecting'): void {
    this.setStatus(status);
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.ensureSocket();
    }, delayMs);
  }

  /** Forgets the socket (closing it with `closeCode` if given); no topic is served by it now. */
  private dropSocket(closeCode: number | undefined): void {
    const ws = this.ws;
    this.ws = undefined;
    this.socketOpen = false;
    this.clearTimer('stableTimer');
    this.clearTimer('pingTimer');
    this.clearTimer('pongTimer');
    this.clearTimer('reconnectTimer');
    for (const sub of this.subs.values()) sub.live = false;
    if (ws === undefined) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (closeCode === undefined) return;
    try {
      ws.close(closeCode);
    } catch {
      // Closing an already closed socket is harmless.
    }
  }

  private releaseSocketIfUnused(): void {
    if (this.subs.size > 0 || this.closed) return;
    this.dropSocket(CLOSE_NORMAL);
    this.backoff.reset();
    this.lost = false;
    this.needFreshToken = false;
    this.setStatus('idle');
  }

  private send(frame: ClientFrame): void {
    if (this.ws === undefined || !this.socketOpen) return;
    try {
      this.ws.send(JSON.stringify(frame));
    } catch (error) {
      this.logger.warn(`send failed: ${describe(error)}`);
    }
  }

  // --- small helpers ---

  private clearTimer(name: 'stableTimer' | 'pingTimer' | 'pongTimer' | 'reconnectTimer'): void {
    if (this[name] === undefined) return;
    this.timers.clearTimeout(this[name]);
    this[name] = undefined;
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    for (const listener of [...this.statusListeners]) this.call(() => listener(status));
  }

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
      this.logger.warn(`callback threw: ${describe(error)}`);
    }
  }
}

function newSubscription(topic: Topic, now: number): Subscription {
  return {
    topic,
    watchers: new Set(),
    startedAt: now,
    lastSeq: undefined,
    lastState: undefined,
    live: false,
    rejected: false,
    notFound: false,
    penaltyMs: undefined,
    pollTimer: undefined,
    pollInFlight: false,
    ended: false,
  };
}

function tokenFailure(error: unknown): never {
  throw new TokenError(`getToken failed: ${describe(error)}`);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `https://host/prefix` → `wss://host/prefix/ws/v1/`; '' → this page's origin. */
export function defaultWsUrl(baseUrl: string): string {
  const origin = baseUrl || (globalThis as { location?: { origin: string } }).location?.origin;
  if (!origin) throw new Error('wsUrl is required when baseUrl is empty outside a browser');
  return `${origin.replace(/^http/, 'ws')}/ws/v1/`;
}
