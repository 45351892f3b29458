// When to poll the HTTP progress endpoint while the socket cannot serve a topic.

/** The adaptive interval of the seed documents, measured from the start of the watch. */
export function pollInterval(elapsedMs: number): number {
  if (elapsedMs < 10_000) return 1_000;
  if (elapsedMs < 60_000) return 2_000;
  return 3_000;
}

/**
 * The Retry-After header in milliseconds: either delay-seconds or an HTTP date.
 * Returns undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, nowMs: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1_000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
