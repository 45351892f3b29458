// The HTTP side: the adaptive schedule, hand-over between socket and polling, seq
// de-duplication across both, and the 404 / 503 / 401 answers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  EPOCH,
  JOB,
  JOB_DETAIL,
  JOB_PROGRESS,
  VIDEO,
  VIDEO_PROGRESS,
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

/** Fake time (ms) of every progress call, made relative to the start of the watch. */
function pollTimes(calls: { at: number }[], watchStartedAt = 0): number[] {
  return calls.map((call) => call.at - watchStartedAt);
}

describe('adaptive polling schedule', () => {
  it('polls every 1 s for 10 s, every 2 s until 60 s, then every 3 s while the socket cannot open', async () => {
    // given: a socket that never opens
    const { client, http, sockets } = harness();
    let seq = 0;
    http.route(JOB_PROGRESS, () => ({ status: 200, body: jobState((seq += 1)) }));

    // when
    client.watch(JOB, spies());
    await advance(70_000);

    // then
    const expected = [
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) => s * 1_000),
      ...Array.from({ length: 25 }, (_, i) => 12_000 + i * 2_000), // 12 s ... 60 s
      63_000,
      66_000,
      69_000,
    ];
    expect(pollTimes(http.callsTo(JOB_PROGRESS))).toEqual(expected);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('measures the schedule from the start of each watch, not of the client', async () => {
    const { client, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    await advance(100_000);

    client.watch(JOB, spies());
    await advance(12_000);

    const sinceWatch = pollTimes(http.callsTo(JOB_PROGRESS), 100_000);
    expect(sinceWatch).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12].map((s) => s * 1_000));
  });

  it('polls while the server is down and the socket keeps failing', async () => {
    const { client, http, sockets } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    client.watch(JOB, spies());
    await settle();

    for (let second = 0; second < 5; second += 1) {
      sockets.last.serverClose(1006);
      await advance(1_000);
    }

    expect(pollTimes(http.callsTo(JOB_PROGRESS))).toEqual([1_000, 2_000, 3_000, 4_000, 5_000]);
    expect(sockets.sockets.length).toBeGreaterThan(3);
  });

  it('uses the video progress endpoint with the bearer token', async () => {
    const { client, http } = harness();
    http.route(VIDEO_PROGRESS, {
      status: 200,
      body: { ...jobState(1), topic: VIDEO, status: 'PROCESSING', job_type: undefined },
    });

    client.watch(VIDEO, spies());
    await advance(1_000);

    expect(http.calls).toEqual([
      expect.objectContaining({
        url: `http://api.test${VIDEO_PROGRESS}`,
        authorization: 'Bearer token-0',
      }),
    ]);
  });
});

describe('socket and polling hand-over', () => {
  it('makes no HTTP call when the socket serves the topic in time', async () => {
    const { client, http, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: JOB, seq: 0, epoch: EPOCH });

    await advance(120_000);

    expect(http.calls).toHaveLength(0);
  });

  it('polls while the socket is down and stops once it is subscribed again', async () => {
    // given: a socket that served the topic for 20 s, then dropped
    const { client, http, sockets } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1)));
    await advance(20_000);
    sockets.last.serverClose(1006);

    // when: the reconnect attempt takes a while to open
    await advance(6_000);
    const duringOutage = http.callsTo(JOB_PROGRESS).length;
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: JOB, seq: 1, epoch: EPOCH });
    await advance(120_000);

    // then
    expect(duringOutage).toBe(3); // every 2 s, 20 s into the watch
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(3);
    expect(client.status).toBe('connected');
  });
});

describe('seq de-duplication across sources', () => {
  it('drops a polled state that is not above the last socket frame', async () => {
    // given
    const { client, http, sockets } = harness();
    const answers = [jobState(5), jobState(4), jobState(6)];
    http.route(JOB_PROGRESS, () => ({ status: 200, body: answers.shift() ?? jobState(6) }));
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(5)));

    // when: the socket drops and polling answers 5, 4, then 6
    sockets.last.serverClose(1006);
    await advance(3_000);

    // then
    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([5, 6]);
  });

  it('drops a socket frame that is not above the last polled state', async () => {
    // given: polling got seq 3 before the socket opened
    const { client, http, sockets } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: jobState(3) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    await advance(1_000);

    // when
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(2)));
    sockets.last.receive(stateFrame(jobState(3)));
    sockets.last.receive(stateFrame(jobState(4)));

    // then
    expect(sockets.last.frames()).toEqual([
      { type: 'subscribe', topic: JOB, since: 3, epoch: EPOCH },
    ]);
    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([3, 4]);
  });

  it('delivers each seq once when a reconnect replays it', async () => {
    const { client, sockets } = harness();
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1)));
    sockets.last.serverClose(1001);
    await advance(500);
    sockets.last.open();

    sockets.last.receive(stateFrame(jobState(1)));
    sockets.last.receive(stateFrame(jobState(2)));

    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([1, 2]);
  });
});

describe('epochs: a state Redis rebuilt after losing the topic', () => {
  it('takes seq 1 of a larger epoch over seq 40 of the old one, from the socket', async () => {
    // given: the socket delivered (E1, 40)
    const { client, sockets } = harness();
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(40)));

    // when: Redis lost the topic; it is rebuilt at (E2, 1), then moves on to (E2, 2)
    sockets.last.receive(stateFrame(jobState(1, { epoch: EPOCH + 5_000 })));
    sockets.last.receive(stateFrame(jobState(2, { epoch: EPOCH + 5_000 })));

    // then: both states of the new epoch are delivered, in order
    const positions = watcher.onState.mock.calls.map(([state]) => [state.epoch, state.seq]);
    expect(positions).toEqual([
      [EPOCH, 40],
      [EPOCH + 5_000, 1],
      [EPOCH + 5_000, 2],
    ]);
  });

  it('drops a state of a lower epoch, whatever its seq, from either source', async () => {
    // given: the socket delivered (E2, 1), and polling will answer (E1, 41) and then (E2, 2)
    const { client, http, sockets } = harness();
    const answers = [jobState(41), jobState(2, { epoch: EPOCH + 5_000 })];
    http.route(JOB_PROGRESS, () => ({ status: 200, body: answers.shift() ?? answers[0] }));
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1, { epoch: EPOCH + 5_000 })));

    // when: a late frame of the old epoch arrives, then the socket drops and polling answers
    sockets.last.receive(stateFrame(jobState(50)));
    sockets.last.serverClose(1006);
    await advance(2_000);

    // then: nothing of the old epoch got through
    const positions = watcher.onState.mock.calls.map(([state]) => [state.epoch, state.seq]);
    expect(positions).toEqual([
      [EPOCH + 5_000, 1],
      [EPOCH + 5_000, 2],
    ]);
  });

  it('resubscribes with the epoch of the last state seen', async () => {
    // given: the last state seen is (E2, 3)
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(9)));
    sockets.last.receive(stateFrame(jobState(3, { epoch: EPOCH + 1 })));

    // when
    sockets.last.serverClose(1001);
    await advance(500);
    sockets.last.open();

    // then
    expect(sockets.last.frames()).toEqual([
      { type: 'subscribe', topic: JOB, since: 3, epoch: EPOCH + 1 },
    ]);
  });
});

describe('HTTP answers', () => {
  it('on 404 makes one detail call and finishes with a terminal record', async () => {
    // given
    const { client, http } = harness();
    http.route(JOB_PROGRESS, { status: 404, body: { code: 'not_found' } });
    const record = { id: 'x', status: 'DONE', result: { rows: 3 }, job_type: 'excel_import' };
    http.route(JOB_DETAIL, { status: 200, body: record });
    const watcher = spies();

    // when
    client.watch(JOB, watcher);
    await advance(30_000);

    // then
    expect(http.calls.map((call) => call.path)).toEqual([JOB_PROGRESS, JOB_DETAIL]);
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(watcher.onDone).toHaveBeenCalledWith(
      expect.objectContaining({ topic: JOB, status: 'DONE', result: { rows: 3 }, progress: null }),
      record,
    );
  });

  it('on 404 with a record still running, reports not_found and keeps polling slowly', async () => {
    // given
    const { client, http } = harness();
    http.route(JOB_PROGRESS, { status: 404, body: { code: 'not_found' } });
    http.route(JOB_DETAIL, { status: 200, body: { status: 'PENDING' } });
    const watcher = spies();

    // when
    client.watch(JOB, watcher);
    await advance(31_000);

    // then: one detail call in all, progress polled every 10 s after it
    expect(http.callsTo(JOB_DETAIL)).toHaveLength(1);
    expect(watcher.onError).toHaveBeenCalledTimes(1);
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'not_found', topic: JOB }),
    );
    expect(pollTimes(http.callsTo(JOB_PROGRESS))).toEqual([1_000, 11_000, 21_000, 31_000]);

    // and when the topic appears, the normal schedule is back
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    await advance(10_000 + 4_000);
    expect(watcher.onState).toHaveBeenCalledWith(expect.objectContaining({ seq: 1 }));
    expect(pollTimes(http.callsTo(JOB_PROGRESS)).slice(4)).toEqual([41_000, 43_000, 45_000]);
  });

  it('on 503 with Retry-After waits as told', async () => {
    const { client, http } = harness();
    let answered = 0;
    http.route(JOB_PROGRESS, () =>
      (answered += 1) === 1
        ? { status: 503, body: { code: 'unavailable' }, headers: { 'Retry-After': '7' } }
        : { status: 200, body: jobState(answered) },
    );

    client.watch(JOB, spies());
    await advance(10_000);

    expect(pollTimes(http.callsTo(JOB_PROGRESS))).toEqual([1_000, 8_000, 9_000, 10_000]);
  });

  it('on 503 without Retry-After doubles the interval up to its cap, then recovers', async () => {
    // given
    const { client, http } = harness();
    let down = true;
    http.route(JOB_PROGRESS, () =>
      down ? { status: 503, body: { code: 'unavailable' } } : { status: 200, body: jobState(1) },
    );

    // when
    client.watch(JOB, spies());
    await advance(100_000);

    // then: 1 s, then waits of 2, 4, 8, 16, 30, 30 s
    const times = pollTimes(http.callsTo(JOB_PROGRESS));
    expect(times.slice(0, 7)).toEqual([1_000, 3_000, 7_000, 15_000, 31_000, 61_000, 91_000]);

    down = false;
    await advance(21_000 + 6_000);
    expect(pollTimes(http.callsTo(JOB_PROGRESS)).slice(7)).toEqual([121_000, 124_000, 127_000]);
  });

  it('on 401 asks for a fresh token and retries at once', async () => {
    // given
    const { client, http, tokenRequests } = harness();
    http.route(JOB_PROGRESS, (call) =>
      call.authorization === 'Bearer token-0'
        ? { status: 401, body: { code: 'not_authenticated' } }
        : { status: 200, body: jobState(1) },
    );
    const watcher = spies();

    // when
    client.watch(JOB, watcher);
    await advance(1_000);

    // then
    expect(http.calls.map((call) => [call.at, call.authorization])).toEqual([
      [1_000, 'Bearer token-0'],
      [1_000, 'Bearer token-1'],
    ]);
    expect(tokenRequests).toContainEqual({ refresh: true });
    expect(watcher.onState).toHaveBeenCalledWith(expect.objectContaining({ seq: 1 }));
  });
});
