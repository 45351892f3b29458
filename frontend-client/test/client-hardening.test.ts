// Issue 12, client part: the audit findings F15 (non-canonical topics, endless polling) and
// F27 (the token_expiring / auth ping-pong). Each test is named after its finding.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { DEFAULT_MAX_WATCH_MS } from '../src/client.js';
import { canonicalTopic } from '../src/topics.js';
import type { ClientFrame, TokenRequest } from '../src/types.js';
import {
  JOB,
  JOB_DETAIL,
  JOB_ID,
  JOB_PROGRESS,
  VIDEO,
  VIDEO_ID,
  advance,
  harness,
  jobState,
  settle,
  spies,
  stateFrame,
} from './fakes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const HOUR_MS = 60 * 60 * 1000;
/** An `exp` in epoch seconds, as the server sends it. */
const EXPIRES_AT = 1_763_780_060;
/** The job id without its hyphens. */
const HEX = JOB_ID.replaceAll('-', '');

function authFrames(frames: ClientFrame[]): ClientFrame[] {
  return frames.filter((frame) => frame.type === 'auth');
}

describe('F15: topics are canonicalised on entry', () => {
  it.each([
    ['upper-case id', `job:${JOB_ID.toUpperCase()}`, JOB],
    ['upper-case kind and id', `JOB:${JOB_ID.toUpperCase()}`, JOB],
    ['surrounding whitespace and newline', `  ${JOB}\n`, JOB],
    ['an id without hyphens', `job:${HEX}`, JOB],
    ['a video topic', `Video:${VIDEO_ID.toUpperCase()}`, VIDEO],
    ['the canonical topic itself', JOB, JOB],
  ])('F15: %s becomes the canonical topic', (_name, input, expected) => {
    // given a topic as a caller may spell it

    // when
    const topic = canonicalTopic(input);

    // then
    expect(topic).toBe(expected);
  });

  it.each([
    ['upper-case id', `job:${JOB_ID.toUpperCase()}`],
    ['upper-case kind and id', `JOB:${JOB_ID.toUpperCase()}`],
    ['surrounding whitespace', `\t${JOB} \n`],
    ['an id without hyphens', `job:${HEX}`],
  ])('F15: a watch of a topic with %s is served by the socket, not polled', async (_, input) => {
    // given: progress answers would be polled if the socket did not serve the topic
    const { client, sockets, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();

    // when: the caller watches a spelling the server canonicalises
    client.watch(input, watcher);
    await settle();
    sockets.last.open();
    const subscribe = sockets.last.takeFrames();
    sockets.last.receive(stateFrame(jobState(1)));
    await advance(30_000);

    // then: the subscribe and the frames use one topic, and nothing is polled
    expect(subscribe).toEqual([{ type: 'subscribe', topic: JOB }]);
    expect(watcher.onState).toHaveBeenCalledWith(jobState(1));
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(0);
    expect(client.status).toBe('connected');
  });

  it('F15: two spellings of one topic share one subscription', async () => {
    // given
    const { client, sockets } = harness();
    const first = spies();
    const second = spies();
    client.watch(JOB, first);
    await settle();
    sockets.last.open();

    // when
    client.watch(` ${JOB.toUpperCase()} `, second);
    sockets.last.receive(stateFrame(jobState(1)));
    await settle();

    // then: one subscribe went out, and both watchers got the state
    expect(sockets.last.frames().filter((frame) => frame.type === 'subscribe')).toHaveLength(1);
    expect(first.onState).toHaveBeenCalledWith(jobState(1));
    expect(second.onState).toHaveBeenCalledWith(jobState(1));
  });

  it.each([
    ['a non-UUID id', 'job:abc'],
    ['braces', `job:{${JOB_ID}}`],
    ['an extra colon', `job:${JOB_ID}:x`],
    ['an unknown kind', `task:${JOB_ID}`],
    ['a feed name', 'jobs'],
    ['misplaced hyphens', `job:${HEX.slice(0, 10)}-${HEX.slice(10)}`],
    ['non-ASCII digits', `job:${JOB_ID.replace('7', '\u0667')}`],
    ['an empty string', ''],
  ])('F15: %s is refused at watch() and never polled', async (_name, input) => {
    // given
    const { client, sockets, http } = harness();
    const watcher = spies();

    // when
    const watching = () => client.watch(input, watcher);

    // then: a clear error, and no traffic at all
    expect(watching).toThrow(TypeError);
    expect(watching).toThrow(/not a topic: .* \(expected job:<uuid> or video:<uuid>\)/);
    await advance(60_000);
    expect(http.calls).toHaveLength(0);
    expect(sockets.sockets).toHaveLength(0);
    expect(client.status).toBe('idle');
  });
});

describe('F15: polling stops at the maximum watch duration', () => {
  it('F15: a topic Redis does not know and whose record stays PENDING is polled for 6 h, then never again', async () => {
    // given: no socket; progress 404; the record is PENDING (F2) with the default limit
    const { client, http } = harness({ WebSocketImpl: undefined });
    http.route(JOB_PROGRESS, { status: 404, body: { code: 'not_found', detail: 'x' } });
    http.route(JOB_DETAIL, { status: 200, body: { id: JOB_ID, status: 'PENDING' } });
    const watcher = spies();
    client.watch(JOB, watcher);

    // when
    await advance(DEFAULT_MAX_WATCH_MS);
    const pollsAtLimit = http.callsTo(JOB_PROGRESS).length;
    await advance(HOUR_MS);

    // then: it was polled until then, got one clear error, and nothing polls any more
    expect(DEFAULT_MAX_WATCH_MS).toBe(6 * HOUR_MS);
    expect(pollsAtLimit).toBeGreaterThan(100);
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(pollsAtLimit);
    const expired = watcher.onError.mock.calls
      .map(([error]) => error)
      .filter((error) => error.code === 'watch_expired');
    expect(expired).toEqual([
      { code: 'watch_expired', message: expect.stringContaining(JOB), topic: JOB },
    ]);
    expect(watcher.onDone).not.toHaveBeenCalled();
    expect(client.status).toBe('idle');
  });

  it('F15: a topic that stays PROCESSING over HTTP stops being polled at maxWatchMs', async () => {
    // given: the socket never opens; progress answers PROCESSING at a growing seq
    const { client, http } = harness({ maxWatchMs: 60_000 });
    let seq = 0;
    http.route(JOB_PROGRESS, () => ({ status: 200, body: jobState((seq += 1)) }));
    const watcher = spies();
    client.watch(JOB, watcher);

    // when
    await advance(60_000);
    const pollsAtLimit = http.callsTo(JOB_PROGRESS).length;
    await advance(10 * 60_000);

    // then
    expect(pollsAtLimit).toBeGreaterThan(10);
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(pollsAtLimit);
    expect(watcher.onError).toHaveBeenCalledTimes(1);
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'watch_expired', topic: JOB }),
    );
  });

  it('F15: at maxWatchMs a live topic is unsubscribed and the unused socket is closed', async () => {
    // given: the socket serves the topic
    const { client, sockets, http } = harness({ maxWatchMs: 60_000, pingIntervalMs: 0 });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    const socket = sockets.last;
    socket.open();
    socket.receive(stateFrame(jobState(1)));
    socket.takeFrames();

    // when
    await advance(60_000);

    // then
    expect(socket.takeFrames()).toEqual([{ type: 'unsubscribe', topic: JOB }]);
    expect(socket.closedByClient).toBe(1000);
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'watch_expired', topic: JOB }),
    );
    await advance(10 * 60_000);
    expect(http.calls).toHaveLength(0);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('F15: each watcher has its own deadline; the topic is watched until the last one passes', async () => {
    // given: a second watcher joins 30 s after the first
    const { client, http } = harness({ WebSocketImpl: undefined, maxWatchMs: 60_000 });
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const early = spies();
    const late = spies();
    client.watch(JOB, early);
    await advance(30_000);
    client.watch(JOB, late);

    // when: the first deadline passes
    await advance(30_000);
    const pollsAfterFirst = http.callsTo(JOB_PROGRESS).length;

    // then: the first watcher expired, the topic is still polled for the second
    expect(early.onError).toHaveBeenCalledWith(expect.objectContaining({ code: 'watch_expired' }));
    expect(late.onError).not.toHaveBeenCalled();
    await advance(29_000);
    expect(http.callsTo(JOB_PROGRESS).length).toBeGreaterThan(pollsAfterFirst);

    // and when the second deadline passes, polling stops
    await advance(1_000);
    const pollsAfterSecond = http.callsTo(JOB_PROGRESS).length;
    await advance(60_000);
    expect(late.onError).toHaveBeenCalledWith(expect.objectContaining({ code: 'watch_expired' }));
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(pollsAfterSecond);
  });

  it('a terminal state before the deadline ends the watch without a later watch_expired', async () => {
    // given
    const { client, sockets } = harness({ maxWatchMs: 60_000 });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    // when
    sockets.last.receive(stateFrame(jobState(2, { status: 'DONE', progress: null })));
    await advance(2 * 60_000);

    // then
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(watcher.onError).not.toHaveBeenCalled();
  });
});

describe('F27: no token_expiring / auth ping-pong', () => {
  /**
   * Plays the server of audit F27: every `auth` gets `auth_ok` and, since the new token is
   * less than 60 s from its `exp`, an immediate `token_expiring`.
   */
  async function serverAnswersEveryAuth(
    socket: { takeFrames(): ClientFrame[]; receive(frame: never): void },
    expiresAtOf: (auths: number) => number,
    rounds: number,
    stepMs: number,
  ): Promise<number[]> {
    const sentAt: number[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const auths = authFrames(socket.takeFrames());
      for (const _ of auths) {
        sentAt.push(Date.now());
        const expiresAt = expiresAtOf(sentAt.length);
        socket.receive({ type: 'auth_ok', expires_at: expiresAt } as never);
        socket.receive({ type: 'token_expiring', expires_at: expiresAt } as never);
      }
      await advance(stepMs);
    }
    return sentAt;
  }

  it('F27: a getToken that returns the cached near-expiry token sends one auth for that expiry', async () => {
    // given: getToken always returns the same token, 50 s from its exp
    const getToken = vi.fn(async (_request: TokenRequest) => 'near-expiry');
    const { client, sockets } = harness({ getToken });
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.open();
    socket.takeFrames();

    // when: the server warns, and warns again after each auth_ok
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT });
    await settle();
    const sentAt = await serverAnswersEveryAuth(socket, () => EXPIRES_AT, 20, 100);

    // then: one auth, and the socket was not closed for flooding
    expect(sentAt).toHaveLength(1);
    expect(getToken.mock.calls.filter(([request]) => request.refresh)).toHaveLength(1);
    expect(sockets.sockets).toHaveLength(1);
    expect(socket.closedByClient).toBeUndefined();
  });

  it('F27: fresh tokens that are still short-lived are sent at most once per minAuthIntervalMs', async () => {
    // given: every refresh gives a new token, each again less than 60 s from its exp
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.open();
    socket.takeFrames();

    // when: 30 s of the server answering every auth with token_expiring
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT });
    await settle();
    const sentAt = await serverAnswersEveryAuth(socket, (n) => EXPIRES_AT + n, 300, 100);

    // then: renewals go on, but never two within 10 s
    expect(sentAt.length).toBeGreaterThanOrEqual(3);
    expect(sentAt.length).toBeLessThanOrEqual(4);
    const gaps = sentAt.slice(1).map((at, i) => at - (sentAt[i] as number));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(10_000);
  });

  it('F27: token_expiring while a renewal is in flight makes no second renewal', async () => {
    // given: the refresh answers only when the test says so
    let answer: ((token: string) => void) | undefined;
    const getToken = vi.fn((request: TokenRequest) =>
      request.refresh
        ? new Promise<string>((resolve) => {
            answer = resolve;
          })
        : Promise.resolve('token-0'),
    );
    const { client, sockets } = harness({ getToken });
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.open();
    socket.takeFrames();

    // when: two warnings arrive before the refresh answers
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT });
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT + 1 });
    await settle();
    answer?.('token-1');
    await settle();

    // then: one refresh, one auth
    expect(getToken.mock.calls.filter(([request]) => request.refresh)).toHaveLength(1);
    expect(authFrames(socket.takeFrames())).toEqual([{ type: 'auth', token: 'token-1' }]);
  });

  it('F27: the ordinary renewal still answers a later expiry at once', async () => {
    // given: a renewal 15 minutes ago gave a token that lived
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.open();
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT });
    await settle();
    socket.takeFrames();
    await advance(15 * 60_000);
    socket.takeFrames();

    // when: the next token nears its expiry
    socket.receive({ type: 'token_expiring', expires_at: EXPIRES_AT + 900 });
    await settle();

    // then
    expect(authFrames(socket.takeFrames())).toEqual([{ type: 'auth', token: 'token-2' }]);
  });
});
