// Terminal states: at most one detail call, then onDone, then silence for that topic.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  JOB,
  JOB2,
  JOB_DETAIL,
  JOB_PROGRESS,
  VIDEO,
  VIDEO_DETAIL,
  advance,
  harness,
  jobState,
  settle,
  spies,
  stateFrame,
  type FakeAnswer,
} from './fakes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** A client whose socket is open and serves JOB. */
async function connected(options: { fetchRecord?: boolean } = {}) {
  const h = harness();
  const watcher = spies();
  const handle = h.client.watch(JOB, { ...watcher, ...options });
  await settle();
  h.sockets.last.open();
  h.sockets.last.receive(stateFrame(jobState(1)));
  return { ...h, watcher, handle, socket: h.sockets.last };
}

const done = (seq: number, resultInDb: boolean) =>
  jobState(seq, {
    status: 'DONE',
    progress: null,
    result: resultInDb ? null : { rows: 3 },
    result_in_db: resultInDb,
  });

describe('terminal state over the socket', () => {
  it('finishes without a detail call when the result is in Redis, then stays silent', async () => {
    // given
    const { socket, http, watcher, sockets, client } = await connected();

    // when
    socket.receive(stateFrame(done(2, false)));
    await settle();

    // then
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(watcher.onDone).toHaveBeenCalledWith(
      expect.objectContaining({ seq: 2, status: 'DONE' }),
      undefined,
    );
    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([1, 2]);
    expect(socket.frames()).toEqual([
      { type: 'subscribe', topic: JOB },
      { type: 'unsubscribe', topic: JOB },
    ]);
    expect(socket.closedByClient).toBe(1000);
    expect(client.status).toBe('idle');

    await advance(300_000);
    expect(http.calls).toHaveLength(0);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('makes exactly one detail call when result_in_db is set', async () => {
    // given
    const { socket, http, watcher } = await connected();
    const record = { id: 'x', status: 'DONE', result: { rows: 50_000 } };
    http.route(JOB_DETAIL, { status: 200, body: record });

    // when
    socket.receive(stateFrame(done(2, true)));
    socket.receive(stateFrame(done(3, true)));
    await advance(300_000);

    // then
    expect(http.calls.map((call) => call.path)).toEqual([JOB_DETAIL]);
    expect(http.calls[0]?.authorization).toBe('Bearer token-0');
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(watcher.onDone).toHaveBeenCalledWith(expect.objectContaining({ seq: 2 }), record);
  });

  it('makes exactly one detail call when the watcher asked for the record', async () => {
    // given a watcher that asked for the record, on an open socket
    const { socket, http, watcher } = await connected({ fetchRecord: true });
    http.route(JOB_DETAIL, { status: 200, body: { status: 'DONE' } });

    // when the terminal state arrives without its result
    socket.receive(stateFrame(done(2, false)));
    await advance(300_000);

    // then the record is fetched once and handed to onDone
    expect(http.callsTo(JOB_DETAIL)).toHaveLength(1);
    expect(watcher.onDone).toHaveBeenCalledWith(expect.objectContaining({ seq: 2 }), {
      status: 'DONE',
    });
  });

  it('treats FAILED as terminal for jobs and READY for videos', async () => {
    // given a watched job and a watched video that asked for its record
    const { client, sockets, http } = harness();
    http.route(VIDEO_DETAIL, { status: 200, body: { status: 'READY', hls_path: 'v/x.m3u8' } });
    const job = spies();
    const video = spies();
    client.watch(JOB, job);
    client.watch(VIDEO, { ...video, fetchRecord: true });
    await settle();
    sockets.last.open();

    // when the job FAILED and the video is READY
    sockets.last.receive(
      stateFrame(jobState(1, { status: 'FAILED', progress: null, error: 'bad file' })),
    );
    sockets.last.receive(
      stateFrame({
        ...jobState(9),
        topic: VIDEO,
        status: 'READY',
        progress: null,
        hls_path: 'v/x.m3u8',
      }),
    );
    await settle();

    // then both are terminal, and only the video's record is fetched
    expect(job.onDone).toHaveBeenCalledWith(
      expect.objectContaining({ status: 'FAILED', error: 'bad file' }),
      undefined,
    );
    expect(video.onDone).toHaveBeenCalledWith(expect.objectContaining({ status: 'READY' }), {
      status: 'READY',
      hls_path: 'v/x.m3u8',
    });
    expect(http.calls.map((call) => call.path)).toEqual([VIDEO_DETAIL]);
  });

  it('keeps the socket for other topics and leaves the finished one out of resubscribes', async () => {
    // given
    const { client, sockets } = harness();
    client.watch(JOB, spies());
    client.watch(JOB2, spies());
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();

    // when
    sockets.last.receive(stateFrame(done(4, false)));
    sockets.last.serverClose(1001);
    await advance(500);
    sockets.last.open();

    // then
    expect(sockets.sockets[0]?.closedByClient).toBeUndefined();
    expect(sockets.sockets[0]?.takeFrames()).toEqual([{ type: 'unsubscribe', topic: JOB }]);
    expect(sockets.last.frames()).toEqual([{ type: 'subscribe', topic: JOB2 }]);
  });

  it('makes stop() after onDone a no-op', async () => {
    // given a watcher whose job is DONE
    const { socket, handle, watcher } = await connected();
    socket.receive(stateFrame(done(2, false)));
    const framesAfterDone = socket.frames().length;

    // when it stops
    handle.stop();

    // then nothing more is sent and onDone ran once
    expect(socket.frames()).toHaveLength(framesAfterDone);
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
  });

  it('reports a failed detail call and still finishes, without a record', async () => {
    // given a detail endpoint that fails
    const { socket, http, watcher } = await connected();
    http.route(JOB_DETAIL, { status: 500, body: { code: 'server_error' } });

    // when the terminal state arrives with its result left in the database
    socket.receive(stateFrame(done(2, true)));
    await advance(60_000);

    // then the error is reported and the watcher still finishes without a record
    expect(http.calls).toHaveLength(1);
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'detail_failed', topic: JOB, httpStatus: 500 }),
    );
    expect(watcher.onDone).toHaveBeenCalledWith(expect.objectContaining({ seq: 2 }), undefined);
  });

  it('does not call onDone for a watcher that stopped during the detail call', async () => {
    // given a detail call under way for a terminal state
    const { socket, http, watcher, handle } = await connected();
    http.route(JOB_DETAIL, { status: 200, body: { status: 'DONE' } });

    socket.receive(stateFrame(done(2, true)));

    // when the watcher stops meanwhile
    handle.stop();
    await settle();

    // then onDone is not called
    expect(watcher.onDone).not.toHaveBeenCalled();
  });
});

describe('terminal state from polling', () => {
  it('makes one detail call, stops polling and closes the socket', async () => {
    // given: the socket never opens, polling sees the job finish
    const { client, http, sockets } = harness();
    const answers = [jobState(1), done(2, true)];
    http.route(JOB_PROGRESS, () => ({ status: 200, body: answers.shift() }));
    http.route(JOB_DETAIL, { status: 200, body: { status: 'DONE', result: 'big' } });
    const watcher = spies();
    client.watch(JOB, watcher);

    // when
    await advance(300_000);

    // then
    expect(http.calls.map((call) => call.path)).toEqual([JOB_PROGRESS, JOB_PROGRESS, JOB_DETAIL]);
    expect(watcher.onDone).toHaveBeenCalledWith(expect.objectContaining({ seq: 2 }), {
      status: 'DONE',
      result: 'big',
    });
    expect(sockets.last.closedByClient).toBe(1000);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('makes no detail call when nothing asks for one', async () => {
    // given a job already DONE on the progress endpoint, and a watcher that wants no record
    const { client, http } = harness();
    http.route(JOB_PROGRESS, { status: 200, body: done(1, false) });
    const watcher = spies();

    // when it is watched over polling
    client.watch(JOB, watcher);

    await advance(300_000);

    // then no detail call is made and onDone runs once
    expect(http.calls.map((call) => call.path)).toEqual([JOB_PROGRESS]);
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
  });

  it('ignores a poll answer that arrives after the socket finished the topic', async () => {
    // given: the socket opens late, while the first poll is still in flight
    const { client, http, sockets } = harness();
    let answerPoll: (answer: FakeAnswer) => void = () => undefined;
    http.route(JOB_PROGRESS, () => new Promise<FakeAnswer>((resolve) => (answerPoll = resolve)));
    const watcher = spies();
    client.watch(JOB, watcher);
    await advance(1_000);
    expect(http.calls).toHaveLength(1);

    // when
    sockets.last.open();
    sockets.last.receive(stateFrame(done(6, false)));
    answerPoll({ status: 200, body: jobState(5) });
    await advance(60_000);

    // then
    expect(watcher.onState.mock.calls.map(([state]) => state.seq)).toEqual([6]);
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(http.calls).toHaveLength(1);
  });
});
