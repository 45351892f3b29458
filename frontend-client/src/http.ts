// The HTTP calls of PROTOCOL.md section 5 the client makes, with the bearer token: a topic's
// progress (Redis only), its database record, the job and video lists (all GET), and the
// cancel request (POST).
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
import { parseStateDocument } from './protocol.js';
import type { TokenSource } from './token.js';
import { cancelPath, detailPath, progressPath } from './topics.js';
import type { DetailRecord, FetchLike, StateDocument, Topic } from './types.js';

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

  /**
   * Asks the topic's job or video to stop: its state document after the request (202), or an
   * ApiError (404 not yours or absent, 403 your role may not, 409 already ended, 503).
   */
  async cancel(topic: Topic): Promise<StateDocument> {
    const answer = await this.send('POST', cancelPath(topic));
    const body = await answer.json().catch(() => undefined);
    if (answer.status !== 202) throw new ApiError(answer.status, parseErrorBody(body));
    const parsed = parseStateDocument(body);
    if (!parsed.ok) throw new Error(`cancel of ${topic}: ${parsed.reason}`);
    return parsed.document;
  }

  private async page<Row extends { topic: Topic }>(path: string): Promise<ListPage<Row>> {
    const answer = await this.get(path);
    const body = await answer.json().catch(() => undefined);
    if (answer.status !== 200) throw new ApiError(answer.status, parseErrorBody(body));
    return parseListPage<Row>(body);
  }

  private get(path: string): Promise<HttpAnswer> {
    return this.send('GET', path);
  }

  /** A bodiless request with the bearer token; a 401 gets one retry with a fresh token (a
   * cancel is idempotent, so repeating it is harmless). */
  private async send(method: 'GET' | 'POST', path: string): Promise<HttpAnswer> {
    const call = (token: string): Promise<HttpAnswer> =>
      this.fetchImpl(this.baseUrl + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      });
    const answer = await call(await this.tokens.get(false));
    if (answer.status !== 401) return answer;
    return call(await this.tokens.get(true));
  }
}
