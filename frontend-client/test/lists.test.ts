// listJobs / listVideos: the query each call sends, the page it returns, and its refusals.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { ApiError } from '../src/http.js';
import { jobListPath, videoListPath } from '../src/lists.js';
import { JOB, JOB2, JOB2_ID, JOB_ID, VIDEO, VIDEO_ID, harness, settle, spies } from './fakes.js';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

function jobRow(id: string, status = 'PROCESSING') {
  return {
    job_id: id,
    topic: `job:${id}`,
    job_type: 'excel_import',
    status,
    created_at: '2026-12-01T09:30:00.123456+09:00',
    started_at: null,
    finished_at: null,
    progress_url: `/api/v1/jobs/${id}/progress/`,
    detail_url: `/api/v1/jobs/${id}/`,
  };
}

describe('list paths', () => {
  it('puts each parameter in the query, repeating status, and omits what is not given', () => {
    // given / when / then
    expect(jobListPath()).toBe('/api/v1/jobs/');
    expect(
      jobListPath({ status: ['PENDING', 'PROCESSING'], jobType: 'excel_import', pageSize: 50 }),
    ).toBe('/api/v1/jobs/?status=PENDING&status=PROCESSING&job_type=excel_import&page_size=50');
    expect(jobListPath({ status: 'DONE', cursor: 'MTc2.NDI' })).toBe(
      '/api/v1/jobs/?status=DONE&cursor=MTc2.NDI',
    );
    expect(jobListPath({ cursor: null })).toBe('/api/v1/jobs/');
    expect(videoListPath({ sessionId: 4021, status: 'READY' })).toBe(
      '/media/videos/?session_id=4021&status=READY',
    );
  });

  it('encodes a cursor that holds URL characters', () => {
    // given a cursor with characters a query must escape
    // when / then
    expect(jobListPath({ cursor: 'a+b/c=' })).toBe('/api/v1/jobs/?cursor=a%2Bb%2Fc%3D');
  });
});

describe('listJobs', () => {
  it('returns the rows and the next cursor, sending the bearer token', async () => {
    // given a server with a first page of two jobs
    const { client, http } = harness();
    http.route('/api/v1/jobs/?status=PROCESSING&page_size=2', {
      status: 200,
      body: { results: [jobRow(JOB2_ID), jobRow(JOB_ID)], next_cursor: 'CUR1', next: '/x' },
    });

    // when the first page is asked for
    const page = await client.listJobs({ status: 'PROCESSING', pageSize: 2 });

    // then it holds both rows, their topics, and the cursor of the next page
    expect(page.results.map((row) => row.topic)).toEqual([JOB2, JOB]);
    expect(page.nextCursor).toBe('CUR1');
    expect(http.calls.map((call) => call.authorization)).toEqual(['Bearer token-0']);
  });

  it('follows nextCursor to the next page until it is null', async () => {
    // given two pages
    const { client, http } = harness();
    http.route('/api/v1/jobs/?page_size=1', {
      status: 200,
      body: { results: [jobRow(JOB2_ID)], next_cursor: 'CUR1', next: null },
    });
    http.route('/api/v1/jobs/?page_size=1&cursor=CUR1', {
      status: 200,
      body: { results: [jobRow(JOB_ID, 'DONE')], next_cursor: null, next: null },
    });

    // when the pages are read one after the other
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await client.listJobs({ pageSize: 1, cursor });
      seen.push(...page.results.map((row) => row.job_id));
      cursor = page.nextCursor;
    } while (cursor !== null);

    // then every job came once, in the server's order
    expect(seen).toEqual([JOB2_ID, JOB_ID]);
  });

  it('rejects a refused filter with an ApiError naming the parameter', async () => {
    // given a server refusing a status
    const { client, http } = harness();
    http.route('/api/v1/jobs/?job_type=nope', {
      status: 400,
      body: {
        code: 'invalid',
        detail: 'The request contains invalid data.',
        fields: { job_type: ['"nope" is not a valid choice.'] },
      },
    });

    // when the list is asked for with it
    const error = await client.listJobs({ jobType: 'nope' }).catch((e: unknown) => e);

    // then the error carries the status, the code and the fields
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(400);
    expect((error as ApiError).code).toBe('invalid');
    expect((error as ApiError).fields).toEqual({ job_type: ['"nope" is not a valid choice.'] });
  });

  it('asks once more with a fresh token after a 401', async () => {
    // given a server that refuses the first token only
    const { client, http } = harness();
    http.route('/api/v1/jobs/', (call) =>
      call.authorization === 'Bearer token-0'
        ? { status: 401, body: { code: 'token_not_valid', detail: 'expired', fields: {} } }
        : { status: 200, body: { results: [], next_cursor: null, next: null } },
    );

    // when the list is asked for
    const page = await client.listJobs();

    // then the second request, with the new token, answers
    expect(page).toEqual({ results: [], nextCursor: null });
    expect(http.calls.map((call) => call.authorization)).toEqual([
      'Bearer token-0',
      'Bearer token-1',
    ]);
  });

  it('rejects a page whose rows have no topic, and a body that is no page', async () => {
    // given a server answering malformed pages
    const { client, http } = harness();
    http.route('/api/v1/jobs/?status=DONE', {
      status: 200,
      body: { results: [{ job_id: JOB_ID }], next_cursor: null },
    });
    http.route('/api/v1/jobs/?status=FAILED', { status: 200, body: ['not', 'a', 'page'] });

    // when / then
    await expect(client.listJobs({ status: 'DONE' })).rejects.toThrow(/valid topic/);
    await expect(client.listJobs({ status: 'FAILED' })).rejects.toThrow(/results/);
  });

  it('gives rows whose topics can be watched at once', async () => {
    // given a page of two running jobs
    const { client, http, sockets } = harness();
    http.route('/api/v1/jobs/', {
      status: 200,
      body: { results: [jobRow(JOB2_ID), jobRow(JOB_ID)], next_cursor: null, next: null },
    });
    const page = await client.listJobs();

    // when each row is watched
    for (const row of page.results) client.watch(row.topic, spies());
    await settle();
    sockets.last.open();
    await settle();

    // then one socket subscribes to both topics
    const topics = sockets.last
      .takeFrames()
      .filter((frame) => frame.type === 'subscribe')
      .map((frame) => (frame as { topic: string }).topic);
    expect(topics.sort()).toEqual([JOB, JOB2].sort());
  });
});

describe('listVideos', () => {
  it('filters by session and status and returns the page', async () => {
    // given one READY video of session 4021
    const { client, http } = harness();
    http.route('/media/videos/?session_id=4021&status=READY', {
      status: 200,
      body: {
        results: [
          {
            video_id: VIDEO_ID,
            topic: VIDEO,
            session_id: 4021,
            status: 'READY',
            created_at: '2026-12-01T09:30:00+09:00',
            updated_at: '2026-12-01T09:41:00+09:00',
            progress_url: `/media/videos/${VIDEO_ID}/progress/`,
            detail_url: `/media/videos/${VIDEO_ID}/`,
          },
        ],
        next_cursor: null,
        next: null,
      },
    });

    // when the session's ready videos are listed
    const page = await client.listVideos({ sessionId: 4021, status: 'READY' });

    // then the video is the one row, and there is no next page
    expect(page.results.map((row) => [row.topic, row.session_id])).toEqual([[VIDEO, 4021]]);
    expect(page.nextCursor).toBeNull();
  });

  it('rejects a server error without the error shape as an ApiError too', async () => {
    // given a proxy answering 502 with an HTML page
    const { client, http } = harness();
    http.route('/media/videos/', { status: 502, body: undefined });

    // when / then
    const error = await client.listVideos().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('http_error');
  });
});
