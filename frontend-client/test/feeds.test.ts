// watchFeed: the tenant feeds over the shared socket, per-item order, refusal, loss and return.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FeedSubscription, feedOf } from '../src/feeds.js';
import {
  EPOCH,
  JOB,
  JOB2,
  VIDEO,
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

function feedSpies() {
  return { onState: vi.fn(), onLive: vi.fn(), onLost: vi.fn(), onError: vi.fn() };
}

async function liveFeed(feed: 'jobs' | 'videos' = 'jobs') {
  const h = harness();
  const watcher = feedSpies();
  const handle = h.client.watchFeed(feed, watcher);
  await settle();
  h.sockets.last.open();
  h.sockets.last.receive({ type: 'subscribed', topic: feed, seq: 0, epoch: 0 });
  return { ...h, watcher, handle };
}

const seqsOf = (spy: ReturnType<typeof vi.fn>) =>
  spy.mock.calls.map(([state]) => [state.topic, state.seq]);

describe('watchFeed', () => {
  it('subscribes to the feed by name, without a position, and says when it is live', async () => {
    // given a client with nothing watched
    const { client, sockets } = harness();
    const watcher = feedSpies();

    // when the jobs feed is watched and the server confirms it
    client.watchFeed('jobs', watcher);
    await settle();
    sockets.last.open();
    const sent = sockets.last.takeFrames();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });

    // then one subscribe named the feed, and the watcher heard it is live
    expect(sent).toEqual([{ type: 'subscribe', topic: 'jobs' }]);
    expect(watcher.onLive).toHaveBeenCalledTimes(1);
    expect(watcher.onError).not.toHaveBeenCalled();
  });

  it('delivers the states of every item, each item in (epoch, seq) order without duplicates', async () => {
    // given a live jobs feed
    const { sockets, watcher } = await liveFeed();

    // when states of two jobs arrive interleaved, with a repeat, an older one, and a rebuild
    for (const state of [
      jobState(1),
      jobState(1, { topic: JOB2 }),
      jobState(3),
      jobState(2), // older than 3: dropped
      jobState(3), // a repeat: dropped
      jobState(2, { topic: JOB2 }),
      jobState(1, { epoch: EPOCH + 1 }), // rebuilt at a new epoch: newer
    ]) {
      sockets.last.receive(stateFrame(state));
    }

    // then each item's states come once, in order, and items do not hold each other back
    expect(seqsOf(watcher.onState)).toEqual([
      [JOB, 1],
      [JOB2, 1],
      [JOB, 3],
      [JOB2, 2],
      [JOB, 1],
    ]);
    expect(watcher.onState.mock.calls.at(-1)?.[0].epoch).toBe(EPOCH + 1);
  });

  it('carries only items of its own kind', async () => {
    // given a live videos feed
    const { sockets, watcher } = await liveFeed('videos');

    // when a job's state and a video's state arrive
    sockets.last.receive(stateFrame(jobState(1)));
    sockets.last.receive(
      stateFrame(jobState(1, { topic: VIDEO, status: 'UPLOADED', job_type: undefined })),
    );

    // then only the video's reaches it
    expect(seqsOf(watcher.onState)).toEqual([[VIDEO, 1]]);
  });

  it('shares the socket with watches: a state reaches both the watch and the feed once', async () => {
    // given a watched job and the jobs feed, live on one socket
    const { client, sockets, watcher } = await liveFeed();
    const watch = spies();
    client.watch(JOB, watch);
    sockets.last.receive(stateFrame(jobState(1)));

    // when the job's next state comes once per subscription (the topic's and the feed's)
    sockets.last.receive(stateFrame(jobState(2)));
    sockets.last.receive(stateFrame(jobState(2)));

    // then there is still one socket, and each watcher got each state once
    expect(sockets.sockets).toHaveLength(1);
    expect(watch.onState.mock.calls.map(([s]) => s.seq)).toEqual([1, 2]);
    expect(seqsOf(watcher.onState)).toEqual([
      [JOB, 1],
      [JOB, 2],
    ]);
  });

  it('ends on not_found (the role may not watch feeds) and releases the socket', async () => {
    // given a feed being subscribed
    const { client, sockets } = harness();
    const watcher = feedSpies();
    client.watchFeed('jobs', watcher);
    await settle();
    sockets.last.open();

    // when the server refuses it as not found
    sockets.last.receive({ type: 'error', topic: 'jobs', code: 'not_found', detail: 'No such topic.' });
    sockets.last.receive(stateFrame(jobState(1)));

    // then the watcher hears why, gets nothing more, and the socket is closed as unused
    expect(watcher.onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'not_found', topic: 'jobs' }),
    );
    expect(watcher.onState).not.toHaveBeenCalled();
    expect(sockets.last.closedByClient).toBe(1000);
    expect(client.status).toBe('idle');
  });

  it('says when the socket is lost, and subscribes again when it returns', async () => {
    // given a live jobs feed
    const { sockets, watcher } = await liveFeed();
    sockets.last.takeFrames();

    // when the socket drops and a new one opens
    sockets.last.serverClose(1012);
    expect(watcher.onLost).toHaveBeenCalledTimes(1);
    await advance(1_000);
    sockets.last.open();
    const sent = sockets.last.takeFrames();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });

    // then the feed is subscribed again on the new socket, and is live again
    expect(sockets.sockets).toHaveLength(2);
    expect(sent).toEqual([{ type: 'subscribe', topic: 'jobs' }]);
    expect(watcher.onLive).toHaveBeenCalledTimes(2);
  });

  it('unsubscribes when its last watcher stops, and keeps the socket for watches', async () => {
    // given the jobs feed with two watchers, and a watched job, on one socket
    const { client, sockets, handle } = await liveFeed();
    const second = client.watchFeed('jobs', feedSpies());
    client.watch(JOB, spies());
    sockets.last.takeFrames();

    // when both feed watchers stop
    handle.stop();
    const afterFirst = sockets.last.takeFrames();
    second.stop();
    handle.stop(); // a second stop is harmless

    // then one unsubscribe went out after the last, and the socket stays open for the watch
    expect(afterFirst).toEqual([]);
    expect(sockets.last.takeFrames()).toEqual([{ type: 'unsubscribe', topic: 'jobs' }]);
    expect(sockets.last.closedByClient).toBeUndefined();
  });

  it('tells a late watcher at once that the feed is live', async () => {
    // given a live feed
    const { client } = await liveFeed();
    const late = feedSpies();

    // when another watcher joins
    client.watchFeed('jobs', late);
    await settle();

    // then it hears that the feed is live without a new subscribe
    expect(late.onLive).toHaveBeenCalledTimes(1);
  });

  it('refuses a name that is not a feed', () => {
    // given / when / then
    const { client } = harness();
    expect(() => client.watchFeed('students' as never, feedSpies())).toThrow(TypeError);
  });
});

describe('FeedSubscription', () => {
  it('forgets the least recently changed items past its memory', () => {
    // given a feed that saw a first job, then many others
    const feed = new FeedSubscription('jobs');
    feed.offer(jobState(5));
    for (let i = 0; i < 5000; i += 1) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      feed.offer(jobState(1, { topic: `job:${id}` }));
    }

    // when / then the first job's position is gone, a recent one's is kept
    expect(feed.last(JOB)).toBeUndefined();
    expect(feed.last('job:00000000-0000-4000-8000-000000004999')).toEqual({ epoch: EPOCH, seq: 1 });
  });

  it('names the feed of each topic kind', () => {
    // given / when / then
    expect([feedOf(JOB), feedOf(VIDEO), feedOf('jobs')]).toEqual(['jobs', 'videos', undefined]);
  });
});
