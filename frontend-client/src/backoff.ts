// Reconnect delays: exponential backoff with full jitter (PROTOCOL.md section 4).
// Full jitter spreads the clients of a restarted server over the whole window instead of
// letting them come back in synchronised waves.

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 20_000;

/** Upper bound of the delay before reconnect attempt `attempt` (0-based). */
export function backoffCeiling(
  attempt: number,
  baseMs: number = BACKOFF_BASE_MS,
  capMs: number = BACKOFF_CAP_MS,
): number {
  // Past 2^30 the product is far above any sane cap; clamping avoids Infinity.
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/** A delay drawn uniformly from [0, ceiling(attempt)). `random` returns a number in [0, 1). */
export function backoffDelay(
  attempt: number,
  random: () => number = Math.random,
  baseMs: number = BACKOFF_BASE_MS,
  capMs: number = BACKOFF_CAP_MS,
): number {
  return random() * backoffCeiling(attempt, baseMs, capMs);
}

/** Counts attempts: each `next()` widens the window until `reset()`. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly random: () => number = Math.random,
    private readonly baseMs: number = BACKOFF_BASE_MS,
    private readonly capMs: number = BACKOFF_CAP_MS,
  ) {}

  get attempts(): number {
    return this.attempt;
  }

  next(): number {
    const delay = backoffDelay(this.attempt, this.random, this.baseMs, this.capMs);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}
