// Protocol constants of PROTOCOL.md sections 2 to 4, in one place. The server's copies live
// in realtime/auth.py and realtime/state.py; the fixtures in tests/fixtures/protocol pin both.

/** The subprotocol the client offers and the server answers. */
export const SUBPROTOCOL = 'realtime.v1';
/** The access token travels as a second subprotocol, `bearer.<token>`. */
export const BEARER_PREFIX = 'bearer.';

export const CLOSE_NORMAL = 1000;
/** What a browser reports for a socket that failed without a close frame. */
export const CLOSE_ABNORMAL = 1006;
/** Not authenticated, or the token expired. */
export const CLOSE_UNAUTHENTICATED = 4001;
/** The page's origin is not allowed. */
export const CLOSE_ORIGIN = 4003;
/** Policy: frame too large, flooding, or a client that stops reading. */
export const CLOSE_POLICY = 4008;
/** Client-chosen code for a socket that stopped answering pings (4000-4999 are free for use). */
export const CLOSE_PONG_TIMEOUT = 4000;

/** The codes of the server's `error` frames (realtime/consumers.py). */
export const SERVER_ERROR_CODES = [
  'not_found',
  'bad_request',
  'rate_limited',
  'too_many_subscriptions',
  /** Redis could not be read when subscribing; the topic is polled until it can. */
  'unavailable',
] as const;

export const JOB_STATUSES = ['PENDING', 'PROCESSING', 'DONE', 'FAILED', 'CANCELLED'] as const;
export const VIDEO_STATUSES = ['UPLOADED', 'PROCESSING', 'READY', 'FAILED', 'CANCELLED'] as const;
/** DONE, FAILED and CANCELLED end a job; READY, FAILED and CANCELLED end a video. */
export const TERMINAL_STATUSES = ['DONE', 'FAILED', 'READY', 'CANCELLED'] as const;

/** The fields of a state document's `progress`, by JSON type. */
export const NUMERIC_PROGRESS_FIELDS = [
  'percent',
  'step_index',
  'step_total',
  'step_percent',
  'remaining_seconds',
] as const;
export const TEXT_PROGRESS_FIELDS = ['step', 'step_name_display'] as const;
