// The client on the wire-format fixtures: real server shapes in, malformed frames dropped
// with a logged reason, and the `unavailable` error code handled.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { parseServerFrame, parseStateDocument } from '../src/protocol.js';
import type { ServerFrame, StateDocument } from '../src/types.js';
import {
  EPOCH,
  JOB,
  JOB_PROGRESS,
  advance,
  harness,
  jobState,
  settle,
  spies,
  stateFrame,
} from './fakes.js';
import { fixture, invalidDocumentFiles, invalidFrameFiles } from './fixtures.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function recordingLogger() {
  return { warn: vi.fn(), debug: vi.fn() };
}

function reasonOf(parsed: { ok: true } | { ok: false; reason: string }): string {
  if (parsed.ok) throw new Error('expected a malformed sample');
  return parsed.reason;
}

function warnings(logger: ReturnType<typeof recordingLogger>): string[] {
  return logger.warn.mock.calls.map((call) => String(call[0]));
}

describe('frames as the server sends them', () => {
  it('delivers the fixture state frames of a job up to its terminal state', async () => {
    // given: a watched job and the server's own frames for it
    const { client, sockets, http } = harness();
    const frames = fixture('frame-state.json').frames as Array<ServerFrame & { topic: string }>;
    const ofJob = frames.filter((frame) => frame.topic === JOB);
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();

    // when
    for (const frame of ofJob) sockets.last.receive(frame);
    await settle();

    // then: every frame reached onState as its document, the last one finished the watch
    const documents = ofJob.map(({ type: _type, ...document }) => document);
    expect(ofJob.length).toBeGreaterThanOrEqual(2);
    expect(watcher.onState.mock.calls.map((call) => call[0] as StateDocument)).toEqual(documents);
    expect(watcher.onDone).toHaveBeenCalledWith(documents.at(-1), undefined);
    expect(watcher.onError).not.toHaveBeenCalled();
    expect(http.calls).toEqual([]);
  });
});

describe('malformed frames', () => {
  const malformed = invalidFrameFiles.flatMap((file) => file.frames);

  it('drops each invalid fixture frame, logs why, and keeps serving the topic', async () => {
    // given: a job served by the socket
    const logger = recordingLogger();
    const { client, sockets, http } = harness({ logger });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1)));

    // when
    for (const frame of malformed) sockets.last.receiveRaw(frame);
    sockets.last.receive(stateFrame(jobState(2)));
    await settle();

    // then
    const expected = malformed.map(
      (frame) => `malformed frame dropped: ${reasonOf(parseServerFrame(frame))}`,
    );
    expect(malformed.length).toBeGreaterThan(10);
    expect(warnings(logger)).toEqual(expected);
    const seqs = watcher.onState.mock.calls.map((call) => (call[0] as StateDocument).seq);
    expect(seqs).toEqual([1, 2]);
    expect(watcher.onError).not.toHaveBeenCalled();
    expect(watcher.onDone).not.toHaveBeenCalled();
    expect(http.calls).toEqual([]);
    expect(sockets.sockets).toHaveLength(1);
  });

  it('drops a malformed progress answer, logs why, and takes the next good one', async () => {
    // given: no socket, and a progress endpoint answering bodies that are not state documents
    const logger = recordingLogger();
    const { client, sockets, http } = harness({ logger });
    sockets.failConstruction = true;
    const bodies = invalidDocumentFiles.flatMap((file) => file.frames);
    let polls = 0;
    http.route(JOB_PROGRESS, () => {
      const body = polls < bodies.length ? bodies[polls] : jobState(1);
      polls += 1;
      return { status: 200, body };
    });
    const watcher = spies();

    // when
    client.watch(JOB, watcher);
    await advance(1_000 * (bodies.length + 1));

    // then
    const dropped = warnings(logger).filter((line) => line.startsWith('malformed progress'));
    expect(dropped).toEqual(
      bodies.map(
        (body) => `malformed progress of ${JOB} dropped: ${reasonOf(parseStateDocument(body))}`,
      ),
    );
    expect(watcher.onState).toHaveBeenCalledTimes(1);
    expect(watcher.onState).toHaveBeenCalledWith(jobState(1));
  });
});

describe('the unavailable error code', () => {
  it('reports it, polls the topic, and hands it back to the socket once readable', async () => {
    // given: the server could not read Redis when the job was subscribed
    const { client, sockets, http } = harness();
    const unavailable = (fixture('frame-error.json').frames as ServerFrame[]).find(
      (frame) => frame.type === 'error' && frame.code === 'unavailable',
    );
    if (unavailable === undefined) throw new Error('frame-error.json lacks unavailable');
    http.route(JOB_PROGRESS, { status: 200, body: jobState(1) });
    const watcher = spies();
    client.watch(JOB, watcher);
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();

    // when
    sockets.last.receive(unavailable);
    await advance(1_000);

    // then
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'unavailable', topic: JOB }),
    );
    expect(http.callsTo(JOB_PROGRESS)).toHaveLength(1);
    expect(watcher.onState).toHaveBeenCalledWith(jobState(1));
    expect(sockets.last.takeFrames()).toEqual([
      { type: 'subscribe', topic: JOB, since: 1, epoch: EPOCH },
    ]);
  });
});
