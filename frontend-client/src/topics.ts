// Topic names, terminal statuses and the HTTP paths of PROTOCOL.md section 5.
import { TERMINAL_STATUSES } from './codes.js';
import type { DetailRecord, StateDocument, Status, Topic } from './types.js';

const TERMINAL: ReadonlySet<string> = new Set(TERMINAL_STATUSES);

/** DONE, FAILED and CANCELLED end a job; READY, FAILED and CANCELLED end a video. */
export function isTerminal(status: string | null | undefined): boolean {
  return status !== null && status !== undefined && TERMINAL.has(status);
}

export interface ParsedTopic {
  kind: 'job' | 'video';
  id: string;
}

export function parseTopic(topic: string): ParsedTopic | undefined {
  const match = /^(job|video):([A-Za-z0-9-]+)$/.exec(topic);
  if (match === null) return undefined;
  return { kind: match[1] as 'job' | 'video', id: match[2] as string };
}

/** A UUID as the server writes it (lower case, hyphenated), or 32 hex digits without hyphens. */
const UUID = /^(?:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{32})$/;

/**
 * The topic as the server names it (`job:<lower-case hyphenated uuid>`), or undefined when
 * `input` names none. Surrounding whitespace, an upper-case kind or id and an id without
 * hyphens are accepted; anything else (another kind, extra colons, non-ASCII digits, braces,
 * hyphens in the wrong places) is not. The server echoes canonical topics only, so a watch
 * keyed by any other spelling would never be served by the socket (audit F15).
 */
export function canonicalTopic(input: string): Topic | undefined {
  const [kind, id, ...rest] = input.trim().toLowerCase().split(':');
  if (rest.length > 0 || (kind !== 'job' && kind !== 'video') || id === undefined) {
    return undefined;
  }
  if (!UUID.test(id)) return undefined;
  const hex = id.replaceAll('-', '');
  const dashed = [0, 8, 12, 16, 20].map((start, i, all) => hex.slice(start, all[i + 1])).join('-');
  return `${kind}:${dashed}`;
}

export function isTopic(topic: string): topic is Topic {
  return parseTopic(topic) !== undefined;
}

export function progressPath(topic: Topic): string {
  const { kind, id } = parseTopic(topic) as ParsedTopic;
  const encoded = encodeURIComponent(id);
  return kind === 'job'
    ? `/api/v1/jobs/${encoded}/progress/`
    : `/media/videos/${encoded}/progress/`;
}

export function detailPath(topic: Topic): string {
  const { kind, id } = parseTopic(topic) as ParsedTopic;
  const encoded = encodeURIComponent(id);
  return kind === 'job' ? `/api/v1/jobs/${encoded}/` : `/media/videos/${encoded}/`;
}

/** `POST` here asks the job or video to stop (PROTOCOL.md section 5). */
export function cancelPath(topic: Topic): string {
  return `${detailPath(topic)}cancel/`;
}

/**
 * A state document standing in for a terminal record found in the database when Redis holds
 * nothing (the status hash expired): same fields, no progress, `(epoch, seq)` as last seen.
 */
export function stateFromRecord(
  topic: Topic,
  record: DetailRecord,
  last: { epoch: number; seq: number } | undefined,
  nowMs: number,
): StateDocument {
  const pick = (key: string): unknown => record[key];
  const updatedAt = pick('updated_at');
  return {
    topic,
    seq: last?.seq ?? 0,
    epoch: last?.epoch ?? 0,
    status: record.status as Status,
    progress: null,
    error: typeof pick('error') === 'string' ? (pick('error') as string) : null,
    updated_at: typeof updatedAt === 'number' ? updatedAt : (parseTime(updatedAt) ?? nowMs),
    ...(pick('job_type') !== undefined && { job_type: pick('job_type') as string | null }),
    ...(pick('result') !== undefined && { result: pick('result') }),
    ...(pick('hls_path') !== undefined && { hls_path: pick('hls_path') as string | null }),
    ...(pick('duration') !== undefined && { duration: pick('duration') as number | null }),
    ...(typeof pick('session_id') === 'number' && { session_id: pick('session_id') as number }),
    ...(typeof pick('cancel_requested') === 'boolean' && {
      cancel_requested: pick('cancel_requested') as boolean,
    }),
    result_in_db: false,
  };
}

function parseTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}
