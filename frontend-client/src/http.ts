// The two HTTP calls of PROTOCOL.md section 5 the client makes: a topic's progress (Redis
// only) and its database record, both as GET with the bearer token.
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
