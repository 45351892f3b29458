// cancelJob / cancelVideo: the request each sends, the state it resolves with, its refusals,
// and what a watch of the same topic sees.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ApiError } from '../src/http.js';
import { isTerminal } from '../src/topics.js';
import {
  JOB,
  JOB_ID,
  VIDEO,
  VIDEO_ID,
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

const JOB_CANCEL = `/api/v1/jobs/${JOB_ID}/cancel/`;
const VIDEO_CANCEL = `/media/videos/${VIDEO_ID}/cancel/`;

const cancelled = (seq: number) =>
  jobState(seq, { status: 'CANCELLED', progress: null, cancel_requested: true });

describe('cancelJob', () => {
  it('POSTs to the job cancel path with the bearer token and resolves the state document', async () => {
    // given a server that accepts the cancel of a running job
    const { client, http } = harness();
    const requested = jobState(4, { cancel_requested: true });
    http.route(JOB_CANCEL, { status: 202, body: requested });

    // when the job is cancelled, its id spelled in upper case
    const state = await client.cancelJob(JOB_ID.toUpperCase());

    // then one POST went to the canonical path, and the state says the request is recorded
    expect(http.calls.map((c) => [c.method, c.path, c.authorization])).toEqual([
      ['POST', JOB_CANCEL, 'Bearer token-0'],
    ]);
    expect(state).toEqual(requested);
    expect(state.cancel_requested).toBe(true);
    expect(isTerminal(state.status)).toBe(false);
  });

  it('rejects a refusal with an ApiError carrying its code', async () => {
    // given a job that has already ended, and one that is not the caller's
    const { client, http } = harness();
    http.route(JOB_CANCEL, {
      status: 409,
      body: { code: 'conflict', detail: 'The job has already ended.', fields: {} },
    });
    const other = '11111111-2222-4333-8444-555555555555';
    http.route(`/api/v1/jobs/${other}/cancel/`, {
      status: 404,
      body: { code: 'not_found', detail: 'Not found.', fields: {} },
    });

    // when each is cancelled
    const ended = await client.cancelJob(JOB_ID).catch((error: unknown) => error);
    const missing = await client.cancelJob(other).catch((error: unknown) => error);

    // then each rejects with the status and code of the answer
    expect(ended).toBeInstanceOf(ApiError);
    expect([(ended as ApiError).status, (ended as ApiError).code]).toEqual([409, 'conflict']);
    expect([(missing as ApiError).status, (missing as ApiError).code]).toEqual([404, 'not_found']);
  });

  it('refuses an id that is no UUID without any request', async () => {
    // given a client
    const { client, http } = harness();

    // when a malformed id is cancelled / then it rejects and nothing is sent
    await expect(client.cancelJob('../../auth/token')).rejects.toThrow(TypeError);
    expect(http.calls).toEqual([]);
  });

  it('rejects a 202 whose body is no state document', async () => {
    // given a server answering 202 with something else
    const { client, http } = harness();
    http.route(JOB_CANCEL, { status: 202, body: { ok: true } });

    // when / then
    await expect(client.cancelJob(JOB_ID)).rejects.toThrow(/cancel of job:/);
  });

  it('ends a watch of the job at once when a pending job is cancelled', async () => {
    // given a watch of a job served by the socket, seen PENDING at seq 1
    const { client, http, sockets } = harness();
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1, { status: 'PENDING', progress: null })));
    http.route(JOB_CANCEL, { status: 202, body: cancelled(2) });

    // when the job is cancelled before any worker took it
    await client.cancelJob(JOB_ID);
    await settle();

    // then the watcher gets CANCELLED and onDone once, without a detail call, and the topic
    // is let go of on the socket
    expect(watcher.onState).toHaveBeenLastCalledWith(expect.objectContaining({ seq: 2 }));
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
    expect(watcher.onDone).toHaveBeenCalledWith(
      expect.objectContaining({ status: 'CANCELLED', cancel_requested: true }),
      undefined,
    );
    expect(http.calls.map((c) => c.path)).toEqual([JOB_CANCEL]);
    expect(sockets.last.frames()).toContainEqual({ type: 'unsubscribe', topic: JOB });
  });

  it('hands a running job the request, then the socket the CANCELLED state, in order', async () => {
    // given a watch of a running job at seq 3
    const { client, http, sockets } = harness();
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(3)));
    http.route(JOB_CANCEL, { status: 202, body: jobState(4, { cancel_requested: true }) });

    // when it is cancelled, the socket then delivers the same seq 4 and the worker's CANCELLED
    await client.cancelJob(JOB_ID);
    sockets.last.receive(stateFrame(jobState(4, { cancel_requested: true })));
    sockets.last.receive(stateFrame(cancelled(5)));
    await settle();

    // then the watcher saw seq 4 once (the duplicate dropped), then CANCELLED ended the watch
    expect(watcher.onState.mock.calls.map(([state]) => [state.seq, state.status])).toEqual([
      [3, 'PROCESSING'],
      [4, 'PROCESSING'],
      [5, 'CANCELLED'],
    ]);
    expect(watcher.onState.mock.calls[1]?.[0].cancel_requested).toBe(true);
    expect(watcher.onDone).toHaveBeenCalledTimes(1);
  });
});

describe('cancelVideo', () => {
  it('POSTs to the video cancel path and resolves its state', async () => {
    // given a server accepting the cancel of an encoding video
    const { client, http } = harness();
    const state = {
      topic: VIDEO,
      seq: 5,
      epoch: 1_763_779_000_000,
      status: 'PROCESSING',
      progress: null,
      error: null,
      cancel_requested: true,
      hls_path: null,
      duration: null,
      updated_at: 1_763_780_000_005,
    };
    http.route(VIDEO_CANCEL, { status: 202, body: state });

    // when the video is cancelled
    const answer = await client.cancelVideo(VIDEO_ID);

    // then one POST went to the video's cancel path and its state came back
    expect(http.calls.map((c) => [c.method, c.path])).toEqual([['POST', VIDEO_CANCEL]]);
    expect(answer).toEqual(state);
  });
});
