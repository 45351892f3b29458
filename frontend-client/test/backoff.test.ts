import { describe, expect, it } from 'vitest';

import { Backoff, backoffCeiling, backoffDelay } from '../src/backoff.js';

describe('backoffCeiling', () => {
  it('doubles from 0.5 s and stops at 20 s', () => {
    // given the first nine attempts
    // when their ceilings are computed
    const ceilings = Array.from({ length: 9 }, (_, attempt) => backoffCeiling(attempt));

    // then they double from 0.5 s up to the 20 s cap
    expect(ceilings).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 20_000, 20_000, 20_000]);
  });

  it('stays finite for absurd attempt counts', () => {
    // given an absurd attempt count
    // when/then its ceiling is still the cap
    expect(backoffCeiling(10_000)).toBe(20_000);
  });
});

describe('backoffDelay (full jitter)', () => {
  it('spans the whole window: 0 at the bottom, just under the ceiling at the top', () => {
    // given attempt 3 and random numbers at the bottom, the top and the middle
    // when/then the delay spans the whole window
    expect(backoffDelay(3, () => 0)).toBe(0);
    expect(backoffDelay(3, () => 0.999_999)).toBeCloseTo(4_000, 0);
    expect(backoffDelay(3, () => 0.5)).toBe(2_000);
  });

  it('keeps every drawn delay within [0, ceiling]', () => {
    // given a reproducible random source
    let seed = 42;
    const random = () => {
      // A small LCG keeps the sample reproducible.
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };

    // when many delays are drawn for every attempt
    for (let attempt = 0; attempt < 20; attempt += 1) {
      for (let draw = 0; draw < 200; draw += 1) {
        const delay = backoffDelay(attempt, random);

        // then each lies within [0, ceiling]
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(Math.min(20_000, 500 * 2 ** attempt));
      }
    }
  });
});

describe('Backoff', () => {
  it('widens the window on every attempt and starts over after reset', () => {
    // given a backoff whose random source sits in the middle
    const backoff = new Backoff(() => 0.5);

    // when four attempts fail
    const first = [backoff.next(), backoff.next(), backoff.next(), backoff.next()];

    // then the window widens every time
    expect(first).toEqual([250, 500, 1_000, 2_000]);
    expect(backoff.attempts).toBe(4);

    // when it is reset
    backoff.reset();

    // then it starts over
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(250);
  });

  it('never exceeds the 20 s cap however many attempts fail', () => {
    // given a backoff at the top of every window
    const backoff = new Backoff(() => 0.999_999);

    // when fifteen attempts fail
    const delays = Array.from({ length: 15 }, () => backoff.next());

    // then no delay exceeds the 20 s cap
    expect(Math.max(...delays)).toBeLessThanOrEqual(20_000);
    expect(delays.at(-1)).toBeCloseTo(20_000, 0);
  });
});
