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
    // given a Retry-After of seconds
    // when/then it is read as milliseconds
    expect(parseRetryAfter('7', 0)).toBe(7_000);
  });

  it('reads an HTTP date relative to now', () => {
    // given a Retry-After HTTP date five seconds from now
    const now = Date.parse('2025-11-22T10:00:00Z');

    // when/then it is read relative to now
    expect(parseRetryAfter('Sat, 22 Nov 2025 10:00:05 GMT', now)).toBe(5_000);
  });

  it('ignores a missing or unreadable header', () => {
    // given no header, or one that is neither seconds nor a date
    // when/then there is no delay
    expect(parseRetryAfter(null, 0)).toBeUndefined();
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });
});

describe('topics', () => {
  it('knows the terminal statuses of jobs and videos', () => {
    // given the statuses of jobs and videos
    // when/then only DONE, FAILED and READY are terminal
    expect(['DONE', 'FAILED', 'READY'].map(isTerminal)).toEqual([true, true, true]);
    expect(['PENDING', 'PROCESSING', 'UPLOADED', undefined].map(isTerminal)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it('accepts job and video topics only', () => {
    // given topics of each kind and malformed ones
    // when/then only job and video topics parse
    expect(parseTopic('job:abc-1')).toEqual({ kind: 'job', id: 'abc-1' });
    expect(isTopic('video:abc')).toBe(true);
    expect(isTopic('tenant:1:job:abc')).toBe(false);
    expect(isTopic('job:')).toBe(false);
  });

  it('builds the progress and detail paths of PROTOCOL.md section 5', () => {
    // given a job and a video topic
    // when/then their paths are those of PROTOCOL.md section 5
    expect(progressPath('job:j1')).toBe('/api/v1/jobs/j1/progress/');
    expect(detailPath('job:j1')).toBe('/api/v1/jobs/j1/');
    expect(progressPath('video:v1')).toBe('/media/videos/v1/progress/');
    expect(detailPath('video:v1')).toBe('/media/videos/v1/');
  });
});
