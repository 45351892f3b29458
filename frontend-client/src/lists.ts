// The two list endpoints of PROTOCOL.md section 5: `GET /api/v1/jobs/` and
// `GET /media/videos/`, newest first, a keyset cursor page at a time. Each row names its
// `topic`, so a page can be handed to `RealtimeClient.watch` row by row.
import { isTopic } from './topics.js';
import type { JobStatus, Topic, VideoStatus } from './types.js';

/** The list's own page size limits live on the server (`LIST_PAGE_SIZE`, `LIST_PAGE_SIZE_MAX`). */
interface PageParams {
  /** `nextCursor` of the previous page; absent for the first (newest) page. */
  cursor?: string | null;
  /** Rows per page, 1 to the server's maximum (100 by default). */
  pageSize?: number;
}

export interface JobListParams extends PageParams {
  /** One status, or several (any of them). */
  status?: JobStatus | readonly JobStatus[];
  jobType?: string;
}

export interface VideoListParams extends PageParams {
  sessionId?: number;
  status?: VideoStatus | readonly VideoStatus[];
}

export interface JobListItem {
  job_id: string;
  topic: Topic;
  job_type: string;
  status: JobStatus;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  progress_url: string;
  detail_url: string;
}

export interface VideoListItem {
  video_id: string;
  topic: Topic;
  session_id: number;
  status: VideoStatus;
  created_at: string;
  updated_at: string;
  progress_url: string;
  detail_url: string;
}

export interface ListPage<Row> {
  results: Row[];
  /** Pass as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** The error body of PROTOCOL.md section 5, `{code, detail, fields}`. */
export interface ApiErrorBody {
  code: string;
  detail: string;
  fields: Record<string, unknown>;
}

export const JOB_LIST_PATH = '/api/v1/jobs/';
export const VIDEO_LIST_PATH = '/media/videos/';

export function jobListPath(params: JobListParams = {}): string {
  const query = new URLSearchParams();
  appendStatuses(query, params.status);
  if (params.jobType !== undefined) query.append('job_type', params.jobType);
  appendPage(query, params);
  return withQuery(JOB_LIST_PATH, query);
}

export function videoListPath(params: VideoListParams = {}): string {
  const query = new URLSearchParams();
  if (params.sessionId !== undefined) query.append('session_id', String(params.sessionId));
  appendStatuses(query, params.status);
  appendPage(query, params);
  return withQuery(VIDEO_LIST_PATH, query);
}

function appendStatuses(query: URLSearchParams, status: string | readonly string[] | undefined) {
  if (status === undefined) return;
  for (const value of typeof status === 'string' ? [status] : status) query.append('status', value);
}

function appendPage(query: URLSearchParams, params: PageParams): void {
  if (params.pageSize !== undefined) query.append('page_size', String(params.pageSize));
  if (params.cursor !== undefined && params.cursor !== null) query.append('cursor', params.cursor);
}

function withQuery(path: string, query: URLSearchParams): string {
  const text = query.toString();
  return text === '' ? path : `${path}?${text}`;
}

/**
 * A list page as the server sent it, or an Error naming what is wrong with it: the rows must
 * be objects with a valid `topic`, `next_cursor` a string or null.
 */
export function parseListPage<Row extends { topic: Topic }>(body: unknown): ListPage<Row> {
  if (typeof body !== 'object' || body === null) throw new Error('list page: not an object');
  const { results, next_cursor: nextCursor } = body as Record<string, unknown>;
  if (!Array.isArray(results)) throw new Error('list page: results is not an array');
  for (const row of results) {
    const topic = (row as { topic?: unknown } | null)?.topic;
    if (typeof topic !== 'string' || !isTopic(topic)) {
      throw new Error('list page: a row without a valid topic');
    }
  }
  if (nextCursor !== null && typeof nextCursor !== 'string') {
    throw new Error('list page: next_cursor is neither a string nor null');
  }
  return { results: results as Row[], nextCursor };
}

/** The error body if `body` has its shape. */
export function parseErrorBody(body: unknown): ApiErrorBody | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { code, detail, fields } = body as Record<string, unknown>;
  if (typeof code !== 'string' || typeof detail !== 'string') return undefined;
  const fieldMap =
    typeof fields === 'object' && fields !== null ? (fields as Record<string, unknown>) : {};
  return { code, detail, fields: fieldMap };
}
