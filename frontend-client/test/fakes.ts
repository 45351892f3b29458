// Fakes of the two ports the client talks through (WebSocket and fetch), plus a harness that
// wires them into a RealtimeClient under vitest's fake timers.
import { vi } from 'vitest';

import { RealtimeClient } from '../src/client.js';
import type {
  ClientFrame,
  ClientOptions,
  FetchLike,
  ServerFrame,
  StateDocument,
  TokenRequest,
  WebSocketLike,
} from '../src/types.js';

export const JOB_ID = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
export const JOB = `job:${JOB_ID}` as const;
export const JOB2_ID = '0b8f5c3e-1a2b-4c3d-8e9f-112233445566';
export const JOB2 = `job:${JOB2_ID}` as const;
export const VIDEO_ID = '9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b';
export const VIDEO = `video:${VIDEO_ID}` as const;
export const BASE = 'http://api.test';

/** One fake socket; the test plays the server through open(), receive() and serverClose(). */
export class FakeSocket implements WebSocketLike {
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  readonly sent: string[] = [];
  isOpen = false;
  /** The code the client closed it with, if it did. */
  closedByClient: number | undefined;

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  /** Answer pings like the server does; a test of a dead connection turns it off. */
  autoPong = true;

  send(data: string): void {
    if (!this.isOpen) throw new Error('send on a socket that is not open');
    this.sent.push(data);
    if (this.autoPong && (JSON.parse(data) as ClientFrame).type === 'ping') {
      queueMicrotask(() => {
        if (this.isOpen) this.receive({ type: 'pong' });
      });
    }
  }

  close(code?: number): void {
    this.closedByClient = code ?? 1000;
    this.isOpen = false;
  }

  // --- the server's side ---

  open(): void {
    this.isOpen = true;
    this.onopen?.(new Event('open'));
  }

  receive(frame: ServerFrame): void {
    this.receiveRaw(frame);
  }

  /** Anything JSON-encodable, well-formed or not: for frames the client must drop. */
  receiveRaw(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  }

  serverClose(code: number): void {
    this.isOpen = false;
    this.onclose?.({ code, reason: '' } as CloseEvent);
  }

  frames(): ClientFrame[] {
    return this.sent.map((data) => JSON.parse(data) as ClientFrame);
  }

  /** Frames sent since the last call. */
  takeFrames(): ClientFrame[] {
    const frames = this.frames().slice(this.taken);
    this.taken = this.sent.length;
    return frames;
  }

  private taken = 0;
}

/** Collects every socket the client constructs. */
export class FakeSocketFactory {
  readonly sockets: FakeSocket[] = [];
  /** When set, the constructor throws (the socket cannot be created at all). */
  failConstruction = false;

  readonly Impl = ((factory: FakeSocketFactory) =>
    class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        if (factory.failConstruction) throw new Error('WebSocket unavailable');
        super(url, typeof protocols === 'string' ? [protocols] : (protocols ?? []));
        factory.sockets.push(this);
      }
    })(this);

  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error('no socket was opened');
    return socket;
  }
}

export interface FakeAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HttpCall {
  url: string;
  path: string;
  method: 'GET' | 'POST';
  authorization: string | undefined;
  /** Milliseconds since the harness started (fake clock). */
  at: number;
}

/** A fake fetch: answers from a per-path route, records every call with its fake time. */
export class FakeHttp {
  readonly calls: HttpCall[] = [];
  private readonly routes = new Map<string, (call: HttpCall) => FakeAnswer | Promise<FakeAnswer>>();

  constructor(private readonly startedAt: number) {}

  /** A route may answer later: return a promise and resolve it when the test wants. */
  route(
    path: string,
    answer: FakeAnswer | ((call: HttpCall) => FakeAnswer | Promise<FakeAnswer>),
  ): void {
    this.routes.set(path, typeof answer === 'function' ? answer : () => answer);
  }

  readonly fetch: FetchLike = async (url, init) => {
    const path = url.startsWith(BASE) ? url.slice(BASE.length) : url;
    const call: HttpCall = {
      url,
      path,
      method: init.method,
      authorization: init.headers.Authorization,
      at: Date.now() - this.startedAt,
    };
    this.calls.push(call);
    const route = this.routes.get(path);
    const answer = route === undefined ? { status: 599 } : await route(call);
    const headers = new Map(
      Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    return {
      status: answer.status,
      headers: { get: (name: string) => headers.get(name.toLowerCase()) ?? null },
      json: async () => answer.body,
    };
  };

  callsTo(path: string): HttpCall[] {
    return this.calls.filter((call) => call.path === path);
  }
}

/** The epoch of the states tests build unless they say otherwise. */
export const EPOCH = 1_763_779_000_000;

export function jobState(seq: number, overrides: Partial<StateDocument> = {}): StateDocument {
  return {
    topic: JOB,
    seq,
    epoch: EPOCH,
    status: 'PROCESSING',
    progress: { percent: Math.min(100, seq * 10), step: 'importing', step_index: 1, step_total: 3 },
    job_type: 'excel_import',
    error: null,
    result: null,
    result_in_db: false,
    updated_at: 1_763_780_000_000 + seq,
    ...overrides,
  };
}

export function stateFrame(state: StateDocument): ServerFrame {
  return { type: 'state', ...state };
}

export const JOB_PROGRESS = `/api/v1/jobs/${JOB_ID}/progress/`;
export const JOB_DETAIL = `/api/v1/jobs/${JOB_ID}/`;
export const JOB2_PROGRESS = `/api/v1/jobs/${JOB2_ID}/progress/`;
export const VIDEO_PROGRESS = `/media/videos/${VIDEO_ID}/progress/`;
export const VIDEO_DETAIL = `/media/videos/${VIDEO_ID}/`;

export const silentLogger = { warn: () => undefined };

/**
 * A client on fake sockets, fake HTTP and vitest's fake clock. getToken hands out
 * `token-0`, and a new `token-N` on every refresh.
 */
export function harness(options: Partial<ClientOptions> = {}) {
  const startedAt = Date.now();
  const sockets = new FakeSocketFactory();
  const http = new FakeHttp(startedAt);
  const tokenRequests: TokenRequest[] = [];
  let refreshes = 0;
  const getToken = vi.fn(async (request: TokenRequest) => {
    tokenRequests.push(request);
    if (request.refresh) refreshes += 1;
    return `token-${refreshes}`;
  });
  const client = new RealtimeClient({
    baseUrl: BASE,
    getToken,
    WebSocketImpl: sockets.Impl,
    fetchImpl: http.fetch,
    logger: silentLogger,
    // Jitter at the top of its window unless a test asks otherwise: delays equal the ceiling.
    random: () => 0.999_999,
    ...options,
  });
  const statuses: string[] = [];
  client.onStatus((status) => statuses.push(status));
  return { client, sockets, http, getToken, tokenRequests, statuses, startedAt };
}

/** Runs pending microtasks (promise chains) without moving the clock. */
export async function settle(): Promise<void> {
  await vi.advanceTimersByTimeAsync(0);
}

/** Moves the fake clock, running timers and the promise chains they start. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** Watches with spies, and opens the socket the watch creates unless told not to. */
export function spies() {
  return { onState: vi.fn(), onDone: vi.fn(), onError: vi.fn() };
}
