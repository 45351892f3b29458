// The HTTP calls of PROTOCOL.md section 5 the client makes, all GET with the bearer token: a
// topic's progress (Redis only), its database record, and the job and video lists.
import {
  jobListPath,
  parseErrorBody,
  parseListPage,
  videoListPath,
  type ApiErrorBody,
  type JobListItem,
  type JobListParams,
  type ListPage,
  type VideoListItem,
  type VideoListParams,
} from './lists.js';
import type { TokenSource } from './token.js';
import { detailPath, progressPath } from './topics.js';
import type { DetailRecord, FetchLike, Topic } from './types.js';

export interface HttpAnswer {
  status: number;
  headers: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** A detail endpoint answered something other than 200. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/** An endpoint refused the request with the error body: `code`, `detail`, and `fields`
 * naming each refused parameter (a `400 invalid` of a list filter, for instance). */
export class ApiError extends HttpStatusError {
  readonly code: string;
  readonly detail: string;
  readonly fields: Record<string, unknown>;

  constructor(status: number, body: ApiErrorBody | undefined) {
    super(status);
    this.code = body?.code ?? 'http_error';
    this.detail = body?.detail ?? `HTTP ${status}`;
    this.fields = body?.fields ?? {};
    this.message = `HTTP ${status} ${this.code}: ${this.detail}`;
  }
}

export class HttpApi {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchImpl: FetchLike,
    private readonly tokens: TokenSource,
  ) {}

  progress(topic: Topic): Promise<HttpAnswer> {
    return this.get(progressPath(topic));
  }

  async detail(topic: Topic): Promise<DetailRecord> {
    const answer = await this.get(detailPath(topic));
    if (answer.status !== 200) throw new HttpStatusError(answer.status);
    return (await answer.json()) as DetailRecord;
  }

  /** One page of the caller's jobs, newest first (staff and admin: the whole tenant). */
  listJobs(params: JobListParams = {}): Promise<ListPage<JobListItem>> {
    return this.page<JobListItem>(jobListPath(params));
  }

  /** One page of the caller's videos, newest first (staff and admin: the whole tenant). */
  listVideos(params: VideoListParams = {}): Promise<ListPage<VideoListItem>> {
    return this.page<VideoListItem>(videoListPath(params));
  }

  private async page<Row extends { topic: Topic }>(path: string): Promise<ListPage<Row>> {
    const answer = await this.get(path);
    const body = await answer.json().catch(() => undefined);
    if (answer.status !== 200) throw new ApiError(answer.status, parseErrorBody(body));
    return parseListPage<Row>(body);
  }

  /** GET with the bearer token; a 401 gets one retry with a fresh token. */
  private async get(path: string): Promise<HttpAnswer> {
    const get = (token: string): Promise<HttpAnswer> =>
      this.fetchImpl(this.baseUrl + path, {
        method: 'GET',
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
    const answer = await get(await this.tokens.get(false));
    if (answer.status !== 401) return answer;
    return get(await this.tokens.get(true));
  }
}
