// The client's HTTP types against the server's OpenAPI document (test/openapi/schema.json,
// committed and kept equal to what the server generates by tests/integration/test_openapi_document.py).
//
// - test/openapi/schema.ts is generated from it by openapi-typescript (`make openapi`); the
//   first test fails when it is stale.
// - The type checks below fail `npm run typecheck` when a server change (a field renamed,
//   removed, made nullable, a status added) no longer fits the hand-written types in src/types.ts.
import openapiTS, { astToString } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';

import type { DetailRecord, JobStatus, Progress, StateDocument, VideoStatus } from '../src/types.js';
import type { components, paths } from './openapi/schema.js';
import committed from './openapi/schema.ts?raw';

type Schemas = components['schemas'];
type NonNull<T> = Exclude<T, null>;
/** The JSON body of an operation's 202 answer. */
type Accepted<Path extends keyof paths> = paths[Path] extends {
  post: { responses: { 202: { content: { 'application/json': infer Body } } } };
}
  ? Body
  : never;

/** true when every value of From is a value of To. */
type Assignable<From, To> = [From] extends [To] ? true : false;
type Same<A, B> = [Assignable<A, B>, Assignable<B, A>] extends [true, true] ? true : false;

// What the progress endpoints answer is a StateDocument the client can consume...
const stateDocuments: [
  Assignable<Schemas['JobState'], StateDocument>,
  Assignable<Schemas['VideoState'], StateDocument>,
  // ...its progress is the client's Progress, both ways...
  Same<NonNull<Schemas['Progress']>, Required<Progress>>,
  Assignable<Progress, Partial<NonNull<Schemas['Progress']>>>,
  // ...and the client knows exactly the statuses the server sends.
  Same<Schemas['JobState']['status'], JobStatus>,
  Same<Schemas['VideoState']['status'], VideoStatus>,
  // The detail endpoints' records are DetailRecords.
  Assignable<Schemas['JobDetailResponse'], DetailRecord>,
  Assignable<Schemas['VideoDetailResponse'], DetailRecord>,
  // Every field the client reads from a state document exists on the server's.
  Assignable<keyof StateDocument, keyof Schemas['JobState'] | keyof Schemas['VideoState']>,
  // What cancelJob and cancelVideo resolve with is the state document the endpoints answer.
  Same<Accepted<'/api/v1/jobs/{job_id}/cancel/'>, Schemas['JobState']>,
  Same<Accepted<'/media/videos/{video_id}/cancel/'>, Schemas['VideoState']>,
] = [true, true, true, true, true, true, true, true, true, true, true];

describe('the OpenAPI types', () => {
  it('are what openapi-typescript generates from the committed schema', async () => {
    // given
    const schema = new URL('./openapi/schema.json', import.meta.url);

    // when
    const generated = astToString(await openapiTS(schema));

    // then
    const banner = committed.slice(0, committed.indexOf('export interface paths'));
    expect(banner + generated).toBe(committed);
  });

  it('fit the hand-written types (checked by tsc)', () => {
    // given / when: the tuple above compiled; then every check holds
    expect(stateDocuments.every(Boolean)).toBe(true);
  });
});
