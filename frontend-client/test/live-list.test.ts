// liveJobs / liveVideos: a list page merged with the feed without gaps, or with per-row watches
// for roles that may not watch feeds.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import type { LiveItem } from '../src/live-list.js';
import type { JobListItem } from '../src/lists.js';
import {
  EPOCH,
  JOB,
  JOB2,
  JOB2_ID,
  JOB_ID,
  advance,
  harness,
  jobState,
  settle,
  stateFrame,
} from './fakes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

const JOB3_ID = '3c4d5e6f-7a8b-4c9d-8e0f-a1b2c3d4e5f6';
const JOB3 = `job:${JOB3_ID}` as const;
const LIST = '/api/v1/jobs/';

function jobRow(id: string, status: string, createdAt: string) {
  return {
    job_id: id,
    topic: `job:${id}`,
    job_type: 'messaging.send',
    status,
    created_at: createdAt,
    started_at: null,
    finished_at: null,
    progress_url: `/api/v1/jobs/${id}/progress/`,
    detail_url: `/api/v1/jobs/${id}/`,
  };
}

/** A list route the test answers when it wants: resolve() with the rows. */
function deferredList(http: ReturnType<typeof harness>['http']) {
  const waiting: ((rows: unknown[]) => void)[] = [];
  http.route(LIST, () => new Promise((resolve) => {
    waiting.push((rows) => resolve({ status: 200, body: { results: rows, next_cursor: null } }));
  }));
  return {
    answer(rows: unknown[]) {
      const next = waiting.shift();
      if (next === undefined) throw new Error('no list request is waiting');
      next(rows);
    },
    get pending() {
      return waiting.length;
    },
  };
}

const view = (items: LiveItem<JobListItem>[]) =>
  items.map((item) => [item.topic, item.status, item.progress?.percent ?? null]);

describe('liveJobs in feed mode', () => {
  it('subscribes to the feed first, reads the page once it is live, then applies the feed', async () => {
    // given a staff client and a list that answers when told
    const { client, sockets, http } = harness();
    const list = deferredList(http);
    const onChange = vi.fn();

    // when the live list starts
    const live = client.liveJobs({ onChange });
    await settle();
    sockets.last.open();

    // then the feed is subscribed and nothing is read before the server confirmed it
    expect(sockets.last.takeFrames()).toEqual([{ type: 'subscribe', topic: 'jobs' }]);
    expect(http.callsTo(LIST)).toHaveLength(0);

    // when it is confirmed, a change arrives while the page is being read, and then the page
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await settle();
    expect(http.callsTo(LIST)).toHaveLength(1);
    sockets.last.receive(stateFrame(jobState(4, { topic: JOB, status: 'PROCESSING' })));
    list.answer([
      jobRow(JOB_ID, 'PENDING', '2026-12-01T09:30:02+09:00'), // older than the feed's state
      jobRow(JOB2_ID, 'DONE', '2026-12-01T09:30:01+09:00'),
    ]);
    await live.loaded;
    await settle();

    // then the row read before the change does not undo it, and both items are listed
    expect(view(live.items)).toEqual([
      [JOB, 'PROCESSING', 40],
      [JOB2, 'DONE', null],
    ]);
    expect(live.mode).toBe('feed');
    expect(onChange).toHaveBeenCalled();
    expect(view(onChange.mock.calls.at(-1)?.[0])).toEqual(view(live.items));
  });

  it('adds items the page did not name first, and de-duplicates by (epoch, seq) per item', async () => {
    // given a live list holding one job
    const { client, sockets, http } = harness();
    http.route(LIST, {
      status: 200,
      body: { results: [jobRow(JOB_ID, 'PROCESSING', '2026-12-01T09:30:00+09:00')], next_cursor: null },
    });
    const live = client.liveJobs();
    await settle();
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await live.loaded;

    // when a new job appears on the feed, and the known one's states come twice and late
    sockets.last.receive(stateFrame(jobState(1, { topic: JOB3, status: 'PENDING', progress: null })));
    sockets.last.receive(stateFrame(jobState(5)));
    sockets.last.receive(stateFrame(jobState(5, { progress: { percent: 99 } })));
    sockets.last.receive(stateFrame(jobState(3)));
    await settle();

    // then the new job comes first, and the known one shows its newest state only
    expect(view(live.items)).toEqual([
      [JOB3, 'PENDING', null],
      [JOB, 'PROCESSING', 50],
    ]);
  });

  it('reads the page again after a reconnect: a row further along beats a stale state', async () => {
    // given a live list where a job was last seen at 40 % on the feed
    const { client, sockets, http } = harness();
    let status = 'PROCESSING';
    http.route(LIST, () => ({
      status: 200,
      body: { results: [jobRow(JOB_ID, status, '2026-12-01T09:30:00+09:00')], next_cursor: null },
    }));
    const live = client.liveJobs({ fallbackRefreshMs: 0 });
    await settle();
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await live.loaded;
    sockets.last.receive(stateFrame(jobState(4)));

    // when the socket drops, the job finishes meanwhile, and the feed is live again
    sockets.last.serverClose(1012);
    status = 'DONE';
    await advance(1_000);
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await settle();

    // then the page was read on each confirmation (and once on the loss), and the job is DONE
    expect(http.callsTo(LIST)).toHaveLength(3);
    expect(view(live.items)).toEqual([[JOB, 'DONE', null]]);
  });

  it('reads the page on a timer while the feed is not live, and stops once it is', async () => {
    // given a live list whose socket is lost
    const { client, sockets, http } = harness({ random: () => 0 });
    http.route(LIST, { status: 200, body: { results: [], next_cursor: null } });
    const live = client.liveJobs({ fallbackRefreshMs: 5_000 });
    await settle();
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await live.loaded;
    sockets.last.serverClose(1006);
    await settle();
    const lost = http.callsTo(LIST).length;

    // when 12 s pass without a socket (the reconnect fails), then the feed is live again
    for (const socket of sockets.sockets.slice(1)) socket.serverClose(1006);
    await advance(12_000);
    const whileDown = http.callsTo(LIST).length;
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', topic: 'jobs', seq: 0, epoch: 0 });
    await settle();
    const live2 = http.callsTo(LIST).length;
    await advance(20_000);

    // then the page was read on the loss, every 5 s while down, once on return, then no more
    expect(lost).toBe(2);
    expect(whileDown).toBe(4);
    expect(live2).toBe(5);
    expect(http.callsTo(LIST)).toHaveLength(5);
    live.stop();
  });
});

describe('liveJobs in watch mode', () => {
  it('falls back to watching each running row when the feed is refused', async () => {
    // given a teacher's client: the server refuses the feed
    const { client, sockets, http } = harness();
    http.route(LIST, {
      status: 200,
      body: {
        results: [
          jobRow(JOB_ID, 'PROCESSING', '2026-12-01T09:30:02+09:00'),
          jobRow(JOB2_ID, 'DONE', '2026-12-01T09:30:01+09:00'),
        ],
        next_cursor: null,
      },
    });
    const onMode = vi.fn();
    const live = client.liveJobs({ onMode });
    await settle();
    sockets.last.open();
    sockets.last.takeFrames();

    // when the feed is answered not_found
    sockets.last.receive({ type: 'error', topic: 'jobs', code: 'not_found', detail: 'No such topic.' });
    await live.loaded;
    await settle();

    // then the page is read and only the running row is watched, on its own topic (the
    // refused feed left the socket unused for a moment: a new one serves the watch)
    expect(onMode.mock.calls.map(([mode]) => mode)).toEqual(['feed', 'watch']);
    expect(live.mode).toBe('watch');
    sockets.last.open();
    const frames = sockets.sockets.flatMap((socket) => socket.frames());
    expect(frames.filter((frame) => frame.type === 'subscribe')).toEqual([
      { type: 'subscribe', topic: 'jobs' },
      { type: 'subscribe', topic: JOB },
    ]);

    // when the watched job moves
    sockets.last.receive(stateFrame(jobState(6)));
    await settle();

    // then its item shows it
    expect(view(live.items)).toEqual([
      [JOB, 'PROCESSING', 60],
      [JOB2, 'DONE', null],
    ]);
  });

  it('watches an item it is told to track, and stops every watch on stop()', async () => {
    // given a list in watch mode with nothing in its page
    const { client, sockets, http } = harness();
    http.route(LIST, { status: 200, body: { results: [], next_cursor: null } });
    const live = client.liveJobs({ mode: 'watch' });
    await live.loaded;

    // when a job just created is tracked and its state arrives
    live.track(JOB3);
    await settle();
    sockets.last.open();
    sockets.last.receive(stateFrame(jobState(1, { topic: JOB3, status: 'PENDING', progress: null })));
    await settle();
    const items = view(live.items);
    live.stop();

    // then it is listed with its state, and stopping unsubscribes and releases the socket
    expect(items).toEqual([[JOB3, 'PENDING', null]]);
    expect(sockets.last.frames().map((frame) => frame.type)).toEqual(['subscribe', 'unsubscribe']);
    expect(sockets.last.closedByClient).toBe(1000);
  });

  it('never uses the feed when told to watch', async () => {
    // given / when a list in watch mode starts
    const { client, sockets, http } = harness();
    http.route(LIST, {
      status: 200,
      body: { results: [jobRow(JOB_ID, 'PENDING', '2026-12-01T09:30:02+09:00')], next_cursor: null },
    });
    const live = client.liveJobs({ mode: 'watch' });
    await live.loaded;
    await settle();
    sockets.last.open();

    // then only the row's topic is subscribed
    expect(sockets.last.frames()).toEqual([{ type: 'subscribe', topic: JOB }]);
    expect(EPOCH).toBeGreaterThan(0);
  });
});
