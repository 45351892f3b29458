// Shapes of PROTOCOL.md sections 3 and 4, and the options and callbacks of the client.
// src/protocol.ts checks received frames against these shapes; tests/fixtures/protocol pins them.
import type { JOB_STATUSES, SERVER_ERROR_CODES, VIDEO_STATUSES } from './codes.js';

/** What a client watches: `job:<uuid>` or `video:<uuid>`, always within the caller's tenant. */
export type Topic = `job:${string}` | `video:${string}`;

/** A tenant feed: every change of every job (`jobs`) or video (`videos`); staff and admin. */
export type FeedName = 'jobs' | 'videos';

export type JobStatus = (typeof JOB_STATUSES)[number];
export type VideoStatus = (typeof VIDEO_STATUSES)[number];
export type Status = JobStatus | VideoStatus;

/** Once a topic has progress, the server sends every field; one never reported is null. */
export interface Progress {
  percent: number | null;
  step?: string | null;
  step_index?: number | null;
  step_total?: number | null;
  step_name_display?: string | null;
  step_percent?: number | null;
  remaining_seconds?: number | null;
}

/** One JSON shape everywhere: WebSocket `state` frames and the HTTP progress endpoints. */
export interface StateDocument {
  topic: string;
  seq: number;
  /**
   * Set once when Redis created the topic's state (Redis TIME in ms). A state Redis lost and
   * rebuilt starts again at seq 1 of a larger epoch: `(epoch, seq)` orders states.
   */
  epoch: number;
  status: Status;
  /** null once terminal. */
  progress: Progress | null;
  error: string | null;
  /**
   * A cancel was asked for (`cancelJob`, `cancelVideo`): the worker stops and the topic ends
   * CANCELLED. Every current server sends it; absent means false.
   */
  cancel_requested?: boolean;
  /** Epoch milliseconds. */
  updated_at: number;
  // Jobs.
  job_type?: string | null;
  result?: unknown;
  result_in_db?: boolean;
  // Videos, when READY.
  hls_path?: string | null;
  duration?: number | null;
  /**
   * Videos: the lecture session. Sent by every current server; null only for a state written
   * before it was (ids beyond 2^53 lose precision in a JavaScript number, as in the detail).
   */
  session_id?: number | null;
}

/** The database record from a detail endpoint; its exact fields belong to the server. */
export type DetailRecord = { status?: string } & Record<string, unknown>;

// --- WebSocket frames (PROTOCOL.md section 4) ---

export type ClientFrame =
  | { type: 'subscribe'; topic: string; since?: number; epoch?: number }
  | { type: 'unsubscribe'; topic: string }
  | { type: 'auth'; token: string }
  | { type: 'ping' };

export type ServerErrorCode = (typeof SERVER_ERROR_CODES)[number];

export type StateFrame = { type: 'state' } & StateDocument;

export interface ErrorFrame {
  type: 'error';
  /** null when the frame that caused it named no topic; else what the client sent. */
  topic?: string | null;
  code: ServerErrorCode;
  detail?: string;
}

export type ServerFrame =
  | StateFrame
  | { type: 'subscribed'; topic: string; seq: number; epoch: number }
  | { type: 'unsubscribed'; topic: string }
  | ErrorFrame
  /** `expires_at` in epoch seconds. */
  | { type: 'token_expiring'; expires_at: number }
  | { type: 'auth_ok'; expires_at: number }
  | { type: 'pong' };

// --- Client surface ---

/**
 * - `idle`: nothing is watched, no socket.
 * - `connecting`: the first socket is opening.
 * - `connected`: the socket is open; watched topics are served by it.
 * - `reconnecting`: the socket was lost; reconnecting with backoff while polling over HTTP.
 * - `polling`: the socket is given up for now (origin refused, policy close, or no WebSocket
 *   available); watched topics are polled over HTTP only.
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'polling';

export type RealtimeErrorCode =
  | ServerErrorCode
  /** Close 4003: the server refused this page's origin. */
  | 'origin_refused'
  /** Close 4008: frame too large or flooding. */
  | 'policy_violation'
  /** getToken() rejected, or the server kept answering 401. */
  | 'auth_failed'
  /** An HTTP answer the client cannot use (non-2xx other than 401, 404 and 503). */
  | 'http_error'
  /** The detail call after a terminal state failed; onDone still follows, without a record. */
  | 'detail_failed'
  /**
   * The watch reached `maxWatchMs` without a terminal state: it is stopped (no polls, no
   * socket subscription for it) and gets no further callback. Watch again to go on.
   */
  | 'watch_expired';

export interface RealtimeError {
  code: RealtimeErrorCode;
  message: string;
  topic?: string;
  /** HTTP status, when the error came from an HTTP answer. */
  httpStatus?: number;
}

export interface WatchCallbacks {
  /** Every accepted state, in strictly increasing (epoch, seq) order, the terminal one included. */
  onState?: (state: StateDocument) => void;
  /**
   * Called once, after the terminal state. `record` is the detail endpoint's answer when one
   * was fetched (the result is in the database, or `fetchRecord` was asked for).
   */
  onDone?: (state: StateDocument, record?: DetailRecord) => void;
  onError?: (error: RealtimeError) => void;
}

export interface WatchOptions extends WatchCallbacks {
  /** Fetch the detail record once the topic is terminal, even if the result is in Redis. */
  fetchRecord?: boolean;
}

export interface WatchHandle {
  /** Stop this watch. Safe to call more than once, and after onDone. */
  stop(): void;
}

export interface FeedOptions {
  /**
   * Every state of every item of the feed's kind in the tenant; per item in strictly
   * increasing (epoch, seq) order. States of different items come in any order.
   */
  onState?: (state: StateDocument) => void;
  /**
   * The server confirmed the feed: every change from now on arrives. Called again after each
   * reconnect; changes made while the socket was away are not replayed (read the list again).
   */
  onLive?: () => void;
  /** The socket went away: changes are missed until the next `onLive`. */
  onLost?: () => void;
  /** `not_found` (the caller's role may not watch feeds; the feed then stops), and others. */
  onError?: (error: RealtimeError) => void;
}

export interface FeedHandle {
  /** Stop this feed watch. Safe to call more than once. */
  stop(): void;
}

export interface TokenRequest {
  /** true when the previous token was rejected or is about to expire: do not return it again. */
  refresh: boolean;
}

/** The part of the browser WebSocket the client uses; the global WebSocket satisfies it. */
export interface WebSocketLike {
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

/** The part of fetch the client uses; the global fetch satisfies it. */
export type FetchLike = (
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string> },
) => Promise<{
  status: number;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}>;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Logger {
  debug?(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
}

export interface ClientOptions {
  /** Origin of the HTTP API, e.g. `https://academy.example`; '' means this page's origin. */
  baseUrl: string;
  /** WebSocket endpoint; defaults to `baseUrl` with ws(s):// and `/ws/v1/`. */
  wsUrl?: string;
  /**
   * Returns a valid access token. Called before each socket opening and HTTP request, so it
   * should answer from a cache unless `refresh` is true.
   */
  getToken: (request: TokenRequest) => Promise<string>;
  WebSocketImpl?: WebSocketConstructor;
  fetchImpl?: FetchLike;
  /** Clock in epoch ms; defaults to Date.now. */
  now?: () => number;
  timers?: Timers;
  /** Source of jitter in [0, 1); defaults to Math.random. */
  random?: () => number;
  logger?: Logger;
  /** Socket open this long counts as stable: the reconnect backoff starts over. Default 10 s. */
  stableAfterMs?: number;
  /** Ping interval on an idle socket; 0 disables pings. Default 25 s. */
  pingIntervalMs?: number;
  /** No frame this long after a ping: the socket is considered dead. Default 10 s. */
  pongTimeoutMs?: number;
  /** After close 4008, wait this long before trying the socket again. Default 60 s. */
  policyRetryMs?: number;
  /** Poll interval while a topic is unknown to Redis and not terminal. Default 10 s. */
  slowPollMs?: number;
  /** Upper bound of the doubled poll interval after 503 or network errors. Default 30 s. */
  maxPollBackoffMs?: number;
  /**
   * A watch that saw no terminal state this long after `watch()` ends with `watch_expired`.
   * Default 6 h, the TTL of a running topic in Redis; 0 disables the limit.
   */
  maxWatchMs?: number;
  /**
   * At least this long between two `auth` frames on the socket: a `token_expiring` that comes
   * sooner waits for the rest of it. Default 10 s.
   */
  minAuthIntervalMs?: number;
}
