// Checks what the server sends against PROTOCOL.md sections 3 and 4 before the client uses it.
// A frame that does not match is dropped with the reason; nothing here throws at the caller.
// The samples in tests/fixtures/protocol are the reference: every valid one must pass, every
// invalid one must fail.
//
// Fields the client does not know are kept and ignored, so a server that adds one does not
// break older clients; a known field of the wrong type, a missing required field, an unknown
// status or frame type is refused.
import {
  JOB_STATUSES,
  NUMERIC_PROGRESS_FIELDS,
  SERVER_ERROR_CODES,
  TEXT_PROGRESS_FIELDS,
  VIDEO_STATUSES,
} from './codes.js';
import { isFeedName } from './feeds.js';
import { parseTopic } from './topics.js';
import type { ServerFrame, StateDocument, StateFrame } from './types.js';

export type Parsed<K extends string, T> =
  | ({ ok: true } & Record<K, T>)
  | { ok: false; reason: string };

/** A WebSocket frame, already decoded from JSON. */
export function parseServerFrame(data: unknown): Parsed<'frame', ServerFrame> {
  return attempt(() => ({ ok: true, frame: checkFrame(data) }));
}

/** The body of a progress endpoint's 200 answer. */
export function parseStateDocument(data: unknown): Parsed<'document', StateDocument> {
  return attempt(() => ({ ok: true, document: checkDocument(objectOf(data, 'state document')) }));
}

/** The state document a `state` frame carries: the frame without its `type`. */
export function documentOf(frame: StateFrame): StateDocument {
  const { type: _type, ...document } = frame;
  return document;
}

// --- checks: each throws Invalid with the reason ---

class Invalid extends Error {}

function attempt<T extends { ok: true }>(check: () => T): T | { ok: false; reason: string } {
  try {
    return check();
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, reason: error.message };
    throw error;
  }
}

type Json = Record<string, unknown>;

const FRAME_TYPES = new Set<string>([
  'state',
  'subscribed',
  'unsubscribed',
  'error',
  'token_expiring',
  'auth_ok',
  'pong',
]);
const ERROR_CODES: ReadonlySet<string> = new Set(SERVER_ERROR_CODES);
const STATUSES: Record<'job' | 'video', ReadonlySet<string>> = {
  job: new Set(JOB_STATUSES),
  video: new Set(VIDEO_STATUSES),
};

function checkFrame(data: unknown): ServerFrame {
  const frame = objectOf(data, 'frame');
  const type = frame['type'];
  if (typeof type !== 'string') throw new Invalid(`frame has no string "type" (${show(type)})`);
  if (!FRAME_TYPES.has(type)) throw new Invalid(`unknown frame type ${show(type)}`);
  const where = `${type} frame`;
  switch (type) {
    case 'state':
      checkDocument(frame, where);
      break;
    case 'subscribed':
      subscriptionOf(frame, where);
      nonNegativeInteger(frame, 'seq', where);
      nonNegativeInteger(frame, 'epoch', where);
      break;
    case 'unsubscribed':
      subscriptionOf(frame, where);
      break;
    case 'error':
      if (!ERROR_CODES.has(frame['code'] as string)) {
        throw new Invalid(`${where}: "code" ${show(frame['code'])} is not an error code`);
      }
      optional(frame, 'topic', where, 'a string or null', isTextOrNull);
      optional(frame, 'detail', where, 'a string', (v) => typeof v === 'string');
      break;
    case 'token_expiring':
    case 'auth_ok':
      required(frame, 'expires_at', where, 'a number', isFiniteNumber);
      break;
  }
  return frame as unknown as ServerFrame;
}

function checkDocument(doc: Json, where = 'state document'): StateDocument {
  const kind = topicOf(doc, where);
  nonNegativeInteger(doc, 'seq', where);
  nonNegativeInteger(doc, 'epoch', where);
  const status = doc['status'];
  if (!STATUSES[kind].has(status as string)) {
    throw new Invalid(`${where}: "status" ${show(status)} is not a ${kind} status`);
  }
  required(doc, 'progress', where, 'an object or null', (v) => v === null || isObject(v));
  if (doc['progress'] !== null) checkProgress(doc['progress'] as Json, where);
  required(doc, 'error', where, 'a string or null', isTextOrNull);
  optional(doc, 'cancel_requested', where, 'a boolean', (v) => typeof v === 'boolean');
  nonNegativeInteger(doc, 'updated_at', where);
  optional(doc, 'job_type', where, 'a string or null', isTextOrNull);
  optional(doc, 'result_in_db', where, 'a boolean', (v) => typeof v === 'boolean');
  optional(doc, 'hls_path', where, 'a string or null', isTextOrNull);
  optional(doc, 'duration', where, 'a number or null', isNumberOrNull);
  optional(doc, 'session_id', where, 'a positive integer or null', isPositiveIntegerOrNull);
  return doc as unknown as StateDocument;
}

function checkProgress(progress: Json, where: string): void {
  for (const name of NUMERIC_PROGRESS_FIELDS) {
    optional(progress, name, `${where} progress`, 'a number or null', isNumberOrNull);
  }
  for (const name of TEXT_PROGRESS_FIELDS) {
    optional(progress, name, `${where} progress`, 'a string or null', isTextOrNull);
  }
}

function topicOf(value: Json, where: string): 'job' | 'video' {
  const topic = value['topic'];
  const parsed = typeof topic === 'string' ? parseTopic(topic) : undefined;
  if (parsed === undefined) {
    throw new Invalid(`${where}: "topic" ${show(topic)} is not job:<id> or video:<id>`);
  }
  return parsed.kind;
}

/** What a subscribe names: a topic, or a tenant feed (`jobs`, `videos`). */
function subscriptionOf(value: Json, where: string): void {
  if (isFeedName(value['topic'])) return;
  topicOf(value, where);
}

function nonNegativeInteger(value: Json, key: string, where: string): void {
  required(value, key, where, 'a non-negative integer', isNonNegativeInteger);
}

function required(
  value: Json,
  key: string,
  where: string,
  expected: string,
  accepts: (field: unknown) => boolean,
): void {
  if (!(key in value)) throw new Invalid(`${where}: "${key}" is missing`);
  optional(value, key, where, expected, accepts);
}

function optional(
  value: Json,
  key: string,
  where: string,
  expected: string,
  accepts: (field: unknown) => boolean,
): void {
  if (key in value && !accepts(value[key])) {
    throw new Invalid(`${where}: "${key}" must be ${expected}, got ${show(value[key])}`);
  }
}

function objectOf(data: unknown, what: string): Json {
  if (!isObject(data)) throw new Invalid(`${what} is not a JSON object (${show(data)})`);
  return data;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isFiniteNumber(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value);
}

function isNumberOrNull(value: unknown): boolean {
  return value === null || isFiniteNumber(value);
}

function isPositiveIntegerOrNull(value: unknown): boolean {
  return value === null || (typeof value === 'number' && Number.isInteger(value) && value > 0);
}

function isTextOrNull(value: unknown): boolean {
  return value === null || typeof value === 'string';
}

/** A short rendering of an offending value for the reason. */
function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
