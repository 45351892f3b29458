import { describe, expect, it } from 'vitest';

import { parseRetryAfter, pollInterval } from '../src/schedule.js';
import { detailPath, isTerminal, isTopic, parseTopic, progressPath } from '../src/topics.js';

describe('pollInterval', () => {
  it.each([
    [0, 1_000],
    [9_999, 1_000],
    [10_000, 2_000],
    [59_999, 2_000],
    [60_000, 3_000],
    [6 * 3_600_000, 3_000],
  ])('after %i ms of watching polls every %i ms', (elapsed, interval) => {
    expect(pollInterval(elapsed)).toBe(interval);
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('7', 0)).toBe(7_000);
  });

  it('reads an HTTP date relative to now', () => {
    const now = Date.parse('2025-11-22T10:00:00Z');
    expect(parseRetryAfter('Sat, 22 Nov 2025 10:00:05 GMT', now)).toBe(5_000);
  });

  it('ignores a missing or unreadable header', () => {
    expect(parseRetryAfter(null, 0)).toBeUndefined();
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});

describe('topics', () => {
  it('knows the terminal statuses of jobs and videos', () => {
    expect(['DONE', 'FAILED', 'READY'].map(isTerminal)).toEqual([true, true, true]);
    expect(['PENDING', 'PROCESSING', 'UPLOADED', undefined].map(isTerminal)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it('accepts job and video topics only', () => {
    expect(parseTopic('job:abc-1')).toEqual({ kind: 'job', id: 'abc-1' });
    expect(isTopic('video:abc')).toBe(true);
    expect(isTopic('tenant:1:job:abc')).toBe(false);
    expect(isTopic('job:')).toBe(false);
  });

  it('builds the progress and detail paths of PROTOCOL.md section 5', () => {
    expect(progressPath('job:j1')).toBe('/api/v1/jobs/j1/progress/');
    expect(detailPath('job:j1')).toBe('/api/v1/jobs/j1/');
    expect(progressPath('video:v1')).toBe('/media/videos/v1/progress/');
    expect(detailPath('video:v1')).toBe('/media/videos/v1/');
  });
});
