// The WebSocket side: lazy opening, shared subscriptions, auth, close codes, reconnects.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  EPOCH,
  JOB,
  JOB2,
  JOB_DETAIL,
  JOB_PROGRESS,
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

describe('opening the socket', () => {
  it('opens one socket lazily, on the first watch, with the bearer subprotocol', async () => {
    // given
    const { client, sockets, statuses } = harness();
    await settle();
    expect(sockets.sockets).toHaveLength(0);
    expect(client.status).toBe('idle');

    // when
    client.watch(JOB, spies());
    client.watch(JOB2, spies());
    await settle();

    // then
    expect(sockets.sockets).toHaveLength(1);
    expect(sockets.last.url).toBe('ws://api.test/ws/v1/');
    expect(sockets.last.protocols).toEqual(['realtime.v1', 'bearer.token-0']);
    expect(client.status).toBe('connecting');

    sockets.last.open();
    expect(client.status).toBe('connected');
    expect(sockets.last.frames()).toEqual([
      { type: 'subscribe', topic: JOB },
      { type: 'subscribe', topic: JOB2 },
    ]);
    expect(statuses).toEqual(['connecting', 'connected']);
  });

  it('delivers state frames to onState', async () => {
    const { client, sockets } = harness();
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    sockets.last.receive(stateFrame(jobState(1)));
    sockets.last.receive(stateFrame(jobState(2)));

    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([1, 2]);
    expect(watcher.onState.mock.calls[0]?.[0]).not.toHaveProperty('type');
  });

  it('subscribes a topic watched after the socket is open right away', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();

    client.watch(JOB2, spies());

    expect(sockets.last.takeFrames()).toEqual([{ type: 'subscribe', topic: JOB2 }]);
  });
});

describe('sharing subscriptions', () => {
  it('gives two watchers of one topic one subscription, unsubscribing after the last stops', async () => {
    // given
    const { client, sockets } = harness();
    const first = spies();
    const second = spies();
    const a = client.watch(JOB, first);
    const b = client.watch(JOB, second);
    await settle();
    sockets.last.open();

    // when
    sockets.last.receive(stateFrame(jobState(1)));
    a.stop();
    sockets.last.receive(stateFrame(jobState(2)));

    // then
    expect(sockets.last.frames()).toEqual([{ type: 'subscribe', topic: JOB }]);
    expect(first.onState).toHaveBeenCalledTimes(1);
    expect(second.onState).toHaveBeenCalledTimes(2);

    b.stop();
    expect(sockets.last.frames()).toEqual([
      { type: 'subscribe', topic: JOB },
      { type: 'unsubscribe', topic: JOB },
    ]);
  });

  it('hands a late watcher the current state at once', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(4)));

    const late = spies();
    client.watch(JOB, late);
    await settle();

    expect(late.onState).toHaveBeenCalledWith(expect.objectContaining({ seq: 4 }));
    expect(sockets.last.frames()).toHaveLength(1);
  });

  it('closes the socket when the last watch stops, and goes idle', async () => {
    // given
    const { client, sockets, http } = harness();
    const one = client.watch(JOB, spies());
    const two = client.watch(JOB2, spies());
    await settle();
    const socket = sockets.last;
    socket.open();

    // when
    one.stop();

    // then
    expect(socket.closedByClient).toBeUndefined();
    expect(socket.takeFrames().at(-1)).toEqual({ type: 'unsubscribe', topic: JOB });

    two.stop();
    expect(socket.closedByClient).toBe(1000);
    expect(client.status).toBe('idle');

    // and nothing else happens afterwards
    await advance(120_000);
    expect(sockets.sockets).toHaveLength(1);
    expect(http.calls).toHaveLength(0);
  });

  it('abandons an opening in progress when the only watch stops', async () => {
    const { client, sockets } = harness();
    const handle = client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;

    handle.stop();

    expect(socket.closedByClient).toBe(1000);
    await advance(60_000);
    expect(sockets.sockets).toHaveLength(1);
  });
});

describe('tokens', () => {
  it('answers token_expiring with an auth frame carrying a fresh token', async () => {
    // given
    const { client, sockets, tokenRequests } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();

    // when
    sockets.last.receive({ type: 'token_expiring', expires_at: 1_763_780_060_000 });
    await settle();

    // then
    expect(tokenRequests.at(-1)).toEqual({ refresh: true });
    expect(sockets.last.takeFrames()).toEqual([{ type: 'auth', token: 'token-1' }]);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('reconnects after close 4001 with a fresh token', async () => {
    // given
    const { client, sockets, tokenRequests } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();

    // when
    sockets.last.serverClose(4001);
    expect(client.status).toBe('reconnecting');
    await advance(500);

    // then
    expect(sockets.sockets).toHaveLength(2);
    expect(tokenRequests).toEqual([{ refresh: false }, { refresh: true }]);
    expect(sockets.last.protocols).toEqual(['realtime.v1', 'bearer.token-1']);
  });

  it('reuses the current token after an ordinary drop', async () => {
    const { client, sockets, tokenRequests } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();

    sockets.last.serverClose(1006);
    await advance(500);

    expect(sockets.sockets).toHaveLength(2);
    expect(tokenRequests.every((request) => !request.refresh)).toBe(true);
    expect(sockets.last.protocols).toEqual(['realtime.v1', 'bearer.token-0']);
  });
});

describe('reconnecting', () => {
  it('resubscribes every watched topic with since = the last seq seen', async () => {
    // given
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    client.watch(JOB2, spies());
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(7)));

    // when
    sockets.last.serverClose(1001);
    await advance(500);
    sockets.last.open();

    // then
    expect(sockets.sockets).toHaveLength(2);
    expect(sockets.last.frames()).toEqual([
      { type: 'subscribe', topic: JOB, since: 7, epoch: EPOCH },
      { type: 'subscribe', topic: JOB2 },
    ]);
  });

  it('waits 0.5 s, 1 s, 2 s ... up to 20 s between failed attempts', async () => {
    // given: jitter drawn at the top of each window, a server that keeps refusing
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.serverClose(1006);

    // then
    const ceilings = [500, 1_000, 2_000, 4_000, 8_000, 16_000, 20_000, 20_000];
    for (const ceiling of ceilings) {
      const before = sockets.sockets.length;
      await advance(ceiling - 2);
      expect(sockets.sockets.length).toBe(before);
      await advance(2);
      expect(sockets.sockets.length).toBe(before + 1);
      sockets.last.serverClose(1006);
    }
  });

  it('draws the delay from the whole window (full jitter)', async () => {
    const { client, sockets } = harness({ random: () => 0 });
    client.watch(JOB, spies());
    await settle();
    for (let attempt = 0; attempt < 5; attempt += 1) {
      sockets.last.serverClose(1006);
      await settle();
    }

    expect(sockets.sockets).toHaveLength(6);
  });

  it('starts the backoff over after a connection stayed open for 10 s', async () => {
    // given: three failures widen the window to 4 s
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    for (const wait of [500, 1_000, 2_000]) {
      sockets.last.serverClose(1006);
      await advance(wait);
    }
    expect(sockets.sockets).toHaveLength(4);

    // when: the connection stays up long enough to count as stable, then drops
    sockets.last.open();
    await advance(10_000);
    sockets.last.serverClose(1001);

    // then: the next attempt comes within 0.5 s again
    await advance(500);
    expect(sockets.sockets).toHaveLength(5);
  });

  it('keeps widening the window when a connection drops before it is stable', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.serverClose(1006);
    await advance(500);
    sockets.last.open();
    await advance(5_000);

    sockets.last.serverClose(1006);

    // Timers truncate fractional delays, so the top of the 1 s window lands on 999 ms.
    await advance(998);
    expect(sockets.sockets).toHaveLength(2);
    await advance(2);
    expect(sockets.sockets).toHaveLength(3);
  });

  it('retries when the WebSocket cannot even be constructed', async () => {
    const { client, sockets } = harness();
    sockets.failConstruction = true;
    client.watch(JOB, spies());
    await settle();
    expect(client.status).toBe('reconnecting');

    sockets.failConstruction = false;
    await advance(500);

    expect(sockets.sockets).toHaveLength(1);
  });

  it('treats a socket that does not answer a ping as dead', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.autoPong = false;
    socket.open();
    socket.takeFrames();

    await advance(25_000);
    expect(socket.takeFrames()).toEqual([{ type: 'ping' }]);
    await advance(10_000);

    expect(socket.closedByClient).toBe(4000);
    expect(client.status).toBe('reconnecting');
  });

  it('keeps a socket that answers its pings', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    const socket = sockets.last;
    socket.open();

    await advance(120_000);

    expect(socket.frames().filter((frame) => frame.type === 'ping')).toHaveLength(4);
    expect(socket.closedByClient).toBeUndefined();
    expect(client.status).toBe('connected');
  });
});

describe('refusals', () => {
  it('on 4003 reports the origin, polls, and never hammers the socket', async () => {
    // given
    const { client, sockets, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    // when
    sockets.last.serverClose(4003);
    await advance(300_000);

    // then
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'origin_refused' }),
    );
    expect(client.status).toBe('polling');
    expect(sockets.sockets).toHaveLength(1);
    expect(http.callsTo(JOB_PROGRESS).length).toBeGreaterThan(50);
  });

  it('after 4003 does not open a socket for later watches either', async () => {
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.serverClose(4003);

    client.watch(JOB2, spies());
    await advance(60_000);

    expect(sockets.sockets).toHaveLength(1);
    expect(client.status).toBe('polling');
  });

  it('on 4008 reports the policy close, polls, and tries the socket again only after 60 s', async () => {
    // given
    const { client, sockets, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    // when
    sockets.last.serverClose(4008);

    // then
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'policy_violation' }),
    );
    expect(client.status).toBe('polling');
    await advance(59_999);
    expect(sockets.sockets).toHaveLength(1);
    expect(http.callsTo(JOB_PROGRESS).length).toBeGreaterThan(20);
    await advance(1);
    expect(sockets.sockets).toHaveLength(2);
  });

  it('falls back to polling for a topic the server refuses to subscribe', async () => {
    const { client, sockets, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: JOB, seq: 0, epoch: EPOCH });

    sockets.last.receive({
      type: 'error',
      topic: JOB,
      code: 'too_many_subscriptions',
      detail: 'limit 100',
    });
    await advance(3_000);

    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'too_many_subscriptions', topic: JOB }),
    );
    expect(http.callsTo(JOB_PROGRESS).length).toBeGreaterThan(0);
    expect(watcher.onState).toHaveBeenCalledWith(expect.objectContaining({ seq: 1 }));
  });
});

describe('topics the socket does not know', () => {
  it('answers a not_found frame with one detail call, finishing a topic that ended long ago', async () => {
    // given
    const { client, sockets, http } = harness();
    http.route(JOB_DETAIL, { status: 200, body: { status: 'FAILED', error: 'timeout' } });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    // when
    sockets.last.receive({ type: 'error', topic: JOB, code: 'not_found', detail: 'no such topic' });
    await advance(60_000);

    // then
    expect(http.calls.map((call) => call.path)).toEqual([JOB_DETAIL]);
    expect(watcher.onDone).toHaveBeenCalledWith(
      expect.objectContaining({ status: 'FAILED', error: 'timeout' }),
      { status: 'FAILED', error: 'timeout' },
    );
    expect(sockets.last.frames()).toEqual([{ type: 'subscribe', topic: JOB }]);
  });

  it('polls a topic the socket did not know, and hands it back to the socket once it exists', async () => {
    // given: the socket and Redis do not know the job yet
    const { client, sockets, http } = harness();
    http.route(JOB_DETAIL, { status: 200, body: { status: 'PENDING' } });
    http.route(JOB_PROGRESS, { status: 404, body: { code: 'not_found' } });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();
    sockets.last.receive({ type: 'error', topic: JOB, code: 'not_found' });
    await advance(10_000);
    expect(watcher.onError).toHaveBeenCalledWith(expect.objectContaining({ code: 'not_found' }));

    // when: the job appears in Redis
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    await advance(10_000);

    // then
    expect(http.callsTo(JOB_DETAIL)).toHaveLength(1);
    expect(watcher.onState).toHaveBeenCalledWith(expect.objectContaining({ seq: 1 }));
    expect(sockets.last.takeFrames()).toEqual([
      { type: 'subscribe', topic: JOB, since: 1, epoch: EPOCH },
    ]);
  });
});

describe('status and close()', () => {
  it('tells status listeners until they unsubscribe', async () => {
    const { client, sockets } = harness();
    const seen: string[] = [];
    const off = client.onStatus((status) => seen.push(status));
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    off();
    sockets.last.serverClose(1006);

    expect(seen).toEqual(['connecting', 'connected']);
    expect(client.status).toBe('reconnecting');
  });

  it('close() stops the socket, the polling and every callback', async () => {
    // given: one topic served by polling while the socket is down
    const { client, sockets, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.serverClose(1006);
    await advance(1_000);
    const callsBefore = http.calls.length;
    const socketsBefore = sockets.sockets.length;

    // when
    client.close();
    await advance(120_000);

    // then
    expect(client.status).toBe('idle');
    expect(http.calls.length).toBe(callsBefore);
    expect(sockets.sockets.length).toBe(socketsBefore);
    expect(() => client.watch(JOB, spies())).toThrow(/closed/);
  });
});
