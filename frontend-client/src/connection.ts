// The one WebSocket every watch shares: opening it with a token, keeping it alive with pings,
// renewing its token, and deciding by close code whether and when to open it again.
//
// Close-code policy (PROTOCOL.md section 4): 4001 reconnects with a fresh token; 4003 gives the
// socket up for good (the page's origin will not change); 4008 waits `policyRetryMs` before
// trying again; anything else reconnects with exponential backoff and full jitter, which
// starts over once a connection stayed open for `stableAfterMs`.
//
// Token renewal (audit F27): the server sends `token_expiring` 60 s before the token's `exp`,
// and again right after `auth_ok` when the new token is just as close to expiry. Answering
// each one at once was a ping-pong of `auth` frames until the server closed with 4008. Now a
// renewal is single-flight, at most one is made per `expires_at`, and two `auth` frames are at
// least `minAuthIntervalMs` apart. A token that cannot be renewed in time expires; the server
// closes with 4001 and the reconnect asks for a new token.
//
// Topics are not its business: it tells the client when the socket opened, hands over every
// well-formed topic frame, and says when the socket no longer serves anything.
import { Backoff } from './backoff.js';
import {
  BEARER_PREFIX,
  CLOSE_ABNORMAL,
  CLOSE_NORMAL,
  CLOSE_ORIGIN,
  CLOSE_POLICY,
  CLOSE_PONG_TIMEOUT,
  CLOSE_UNAUTHENTICATED,
  SUBPROTOCOL,
} from './codes.js';
import { parseServerFrame } from './protocol.js';
import { type TokenSource, describeError } from './token.js';
import type {
  ClientFrame,
  ConnectionStatus,
  Logger,
  RealtimeError,
  ServerFrame,
  Timers,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/** The frames about one topic; the connection handles the rest itself. */
export type TopicFrame = Extract<ServerFrame, { type: 'state' | 'subscribed' | 'error' }>;

export interface ConnectionEvents {
  /** Whether anything is watched: the socket is only kept while something is. */
  wanted(): boolean;
  /** The socket is open: subscribe every watched topic. */
  opened(): void;
  frame(frame: TopicFrame): void;
  /** The socket closed, failed to open or was given up: it serves no topic now. */
  lost(): void;
  /** An error every watcher should hear about. */
  failed(error: RealtimeError): void;
  status(status: ConnectionStatus): void;
}

export interface ConnectionOptions {
  url: string;
  /** undefined: no WebSocket in this environment; the client only polls. */
  WebSocketImpl: WebSocketConstructor | undefined;
  tokens: TokenSource;
  timers: Timers;
  random: () => number;
  logger: Logger;
  stableAfterMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  policyRetryMs: number;
  /** Clock in epoch ms, for the floor between two `auth` frames. */
  now: () => number;
  minAuthIntervalMs: number;
}

type TimerName = 'stableTimer' | 'pingTimer' | 'pongTimer' | 'reconnectTimer' | 'renewTimer';

export class SocketConnection {
  private readonly backoff: Backoff;
  private currentStatus: ConnectionStatus = 'idle';
  private closed = false;
  private ws: WebSocketLike | undefined;
  private open = false;
  /** Waiting for a token before opening a socket. */
  private opening = false;
  /** The next opening must ask for a new token (the last one was refused with 4001). */
  private needFreshToken = false;
  /** No WebSocket, or close 4003: the socket is not tried again. */
  private disabled: boolean;
  /** The socket was lost since the last stable connection: report `reconnecting`. */
  private lost = false;
  private stableTimer: unknown;
  private pingTimer: unknown;
  private pongTimer: unknown;
  private reconnectTimer: unknown;
  /** A renewal waiting for the floor between two `auth` frames to pass. */
  private renewTimer: unknown;
  /** A token renewal is in flight. */
  private renewing = false;
  /** The `expires_at` of the last `token_expiring` a renewal answered. */
  private renewedFor: number | undefined;
  /** When the last `auth` frame was sent. */
  private lastAuthAt: number | undefined;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.backoff = new Backoff(options.random);
    this.disabled = options.WebSocketImpl === undefined;
  }

  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** The socket is open: frames sent now reach the server. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Opens the socket if something is watched and none is open, opening or planned. */
  ensure(): void {
    if (this.closed || !this.events.wanted()) return;
    if (this.disabled) {
      this.setStatus('polling');
      return;
    }
    if (this.ws !== undefined || this.opening || this.reconnectTimer !== undefined) return;
    void this.connect();
  }

  send(frame: ClientFrame): void {
    if (this.ws === undefined || !this.open) return;
    try {
      this.ws.send(JSON.stringify(frame));
    } catch (error) {
      this.options.logger.warn(`send failed: ${describeError(error)}`);
    }
  }

  /** Nothing is watched any more: close the socket and start afresh next time. */
  release(): void {
    if (this.closed) return;
    this.drop(CLOSE_NORMAL);
    this.backoff.reset();
    this.lost = false;
    this.needFreshToken = false;
    this.renewedFor = undefined;
    this.lastAuthAt = undefined;
    this.setStatus('idle');
  }

  /** For good: the connection cannot be used again. */
  close(): void {
    this.closed = true;
    this.drop(CLOSE_NORMAL);
    this.setStatus('idle');
  }

  private async connect(): Promise<void> {
    this.opening = true;
    this.setStatus(this.lost ? 'reconnecting' : 'connecting');
    let token: string;
    try {
      token = await this.options.tokens.get(this.needFreshToken);
      this.needFreshToken = false;
    } catch (error) {
      this.opening = false;
      if (this.closed || !this.events.wanted()) return;
      this.events.failed({ code: 'auth_failed', message: describeError(error) });
      this.gone(CLOSE_ABNORMAL);
      return;
    }
    this.opening = false;
    // Everything may have stopped (and started again) while the token was coming.
    if (this.closed || !this.events.wanted() || this.ws !== undefined) return;
    this.setStatus(this.lost ? 'reconnecting' : 'connecting');

    let ws: WebSocketLike;
    try {
      const Impl = this.options.WebSocketImpl as WebSocketConstructor;
      ws = new Impl(this.options.url, [SUBPROTOCOL, `${BEARER_PREFIX}${token}`]);
    } catch (error) {
      this.options.logger.warn(`cannot open ${this.options.url}: ${describeError(error)}`);
      this.gone(CLOSE_ABNORMAL);
      return;
    }
    this.ws = ws;
    // Handlers of a replaced socket must not touch the connection any more.
    ws.onopen = () => {
      if (this.ws === ws) this.opened();
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this.received(event.data);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.gone(event.code);
    };
    ws.onerror = () => {
      // A close event always follows; it carries the code that decides what to do.
    };
  }

  private opened(): void {
    this.open = true;
    this.setStatus('connected');
    this.stableTimer = this.options.timers.setTimeout(() => {
      this.stableTimer = undefined;
      this.backoff.reset();
      this.lost = false;
    }, this.options.stableAfterMs);
    this.armPing();
    this.events.opened();
  }

  /** Every frame is checked before use; a malformed one is dropped with its reason. */
  private received(data: unknown): void {
    let decoded: unknown;
    try {
      decoded = JSON.parse(String(data));
    } catch {
      this.options.logger.warn('unreadable frame dropped');
      return;
    }
    // Any readable frame shows the socket is alive.
    this.armPing();
    const parsed = parseServerFrame(decoded);
    if (!parsed.ok) {
      this.options.logger.warn(`malformed frame dropped: ${parsed.reason}`);
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'token_expiring':
        this.tokenExpiring(frame.expires_at);
        return;
      case 'auth_ok':
      case 'unsubscribed':
      case 'pong':
        return;
      default:
        this.events.frame(frame);
    }
  }

  /** Renews the token once per expiry, one renewal at a time, not too soon after the last. */
  private tokenExpiring(expiresAt: number): void {
    if (this.renewing || this.renewTimer !== undefined || this.renewedFor === expiresAt) {
      // The token getToken() gave for this expiry expires at the same time: asking again
      // would only send it again. The server closes with 4001 at expiry; the reconnect asks
      // for a new token.
      this.options.logger.debug?.(`token_expiring ${expiresAt}: already renewing or renewed`);
      return;
    }
    const waitMs =
      this.lastAuthAt === undefined
        ? 0
        : this.lastAuthAt + this.options.minAuthIntervalMs - this.options.now();
    if (waitMs <= 0) {
      void this.renewToken(expiresAt);
      return;
    }
    this.renewTimer = this.options.timers.setTimeout(() => {
      this.renewTimer = undefined;
      void this.renewToken(expiresAt);
    }, waitMs);
  }

  private async renewToken(expiresAt: number): Promise<void> {
    const ws = this.ws;
    this.renewing = true;
    this.renewedFor = expiresAt;
    let token: string;
    try {
      token = await this.options.tokens.get(true);
    } catch (error) {
      // The server closes with 4001 at expiry; the reconnect asks for a token again.
      this.events.failed({ code: 'auth_failed', message: describeError(error) });
      return;
    } finally {
      this.renewing = false;
    }
    // A socket opened meanwhile was opened with a token at least as new.
    if (!this.open || this.ws !== ws) return;
    this.lastAuthAt = this.options.now();
    this.send({ type: 'auth', token });
  }

  /** Sends a ping after a quiet interval; a socket that then stays silent is dead. */
  private armPing(): void {
    this.clearTimer('pongTimer');
    this.clearTimer('pingTimer');
    if (this.options.pingIntervalMs <= 0) return;
    this.pingTimer = this.options.timers.setTimeout(() => {
      this.pingTimer = undefined;
      this.pongTimer = this.options.timers.setTimeout(() => {
        this.pongTimer = undefined;
        this.options.logger.warn('no answer to ping: reconnecting');
        this.gone(CLOSE_PONG_TIMEOUT);
      }, this.options.pongTimeoutMs);
      this.send({ type: 'ping' });
    }, this.options.pingIntervalMs);
  }

  /** The socket closed, failed to open or was given up: the close-code policy decides. */
  private gone(code: number): void {
    // Only a socket we gave up on is still open; a closed one needs no close() call.
    this.drop(code === CLOSE_PONG_TIMEOUT ? CLOSE_PONG_TIMEOUT : undefined);
    if (this.closed) return;
    if (!this.events.wanted()) {
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
        this.disabled = true;
        this.events.failed({
          code: 'origin_refused',
          message: 'WebSocket origin refused (4003)',
        });
        this.setStatus('polling');
        break;
      case CLOSE_POLICY:
        this.backoff.next();
        this.events.failed({
          code: 'policy_violation',
          message: 'WebSocket closed for a policy violation (4008)',
        });
        this.scheduleReconnect(this.options.policyRetryMs, 'polling');
        break;
      default:
        this.scheduleReconnect(this.backoff.next());
    }
    this.events.lost();
  }

  private scheduleReconnect(delayMs: number, status: ConnectionStatus = 'reconnecting'): void {
    this.setStatus(status);
    this.reconnectTimer = this.options.timers.setTimeout(() => {
      this.reconnectTimer = undefined;
      this.ensure();
    }, delayMs);
  }

  /** Forgets the socket (closing it with `closeCode` if given) and its timers. */
  private drop(closeCode: number | undefined): void {
    const ws = this.ws;
    this.ws = undefined;
    this.open = false;
    this.clearTimer('stableTimer');
    this.clearTimer('pingTimer');
    this.clearTimer('pongTimer');
    this.clearTimer('reconnectTimer');
    this.clearTimer('renewTimer');
    if (ws === undefined) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (closeCode === undefined) return;
    try {
      ws.close(closeCode);
    } catch {
      // Closing an already closed socket is harmless.
    }
  }

  private clearTimer(name: TimerName): void {
    if (this[name] === undefined) return;
    this.options.timers.clearTimeout(this[name]);
    this[name] = undefined;
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.events.status(status);
  }
}
