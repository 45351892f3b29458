// The client's parser against the wire-format fixtures shared with the server's tests:
// every valid sample passes, every invalid one fails with a reason.
import { describe, expect, it } from 'vitest';

import { SERVER_ERROR_CODES } from '../src/codes.js';
import { parseServerFrame, parseStateDocument } from '../src/protocol.js';
import {
  fixtures,
  httpProgressAnswers,
  invalidDocumentFiles,
  invalidFrameFiles,
  validDocumentFiles,
  validFrameFiles,
} from './fixtures.js';

const samples = (files: typeof fixtures) =>
  files.flatMap((file) =>
    file.frames.map((frame, index) => [`${file.name} #${index}`, frame] as const),
  );

describe('the fixture set', () => {
  it('has every kind of file and sample the protocol defines', () => {
    // given
    const frames = samples(validFrameFiles).map(([, frame]) => frame as Record<string, unknown>);

    // when
    const types = new Set(frames.map((frame) => frame['type']));
    const codes = new Set(frames.filter((f) => f['type'] === 'error').map((f) => f['code']));

    // then
    expect([...types].sort()).toEqual(
      ['auth_ok', 'error', 'pong', 'state', 'subscribed', 'token_expiring', 'unsubscribed'],
    );
    expect([...codes].sort()).toEqual([...SERVER_ERROR_CODES].sort());
    expect(validDocumentFiles.length).toBeGreaterThanOrEqual(4);
    expect(invalidFrameFiles.length).toBeGreaterThan(0);
    expect(invalidDocumentFiles.length).toBeGreaterThan(0);
    for (const file of fixtures) expect(file.frames.length, file.name).toBeGreaterThan(0);
  });
});

describe('parseServerFrame', () => {
  it.each(samples(validFrameFiles))('accepts %s', (_name, sample) => {
    // given a frame as the server sends it

    // when
    const parsed = parseServerFrame(sample);

    // then
    expect(parsed).toEqual({ ok: true, frame: sample });
  });

  it.each(samples(validDocumentFiles))('accepts %s as a state frame', (_name, sample) => {
    // given a state document with the frame's type
    const frame = { type: 'state', ...(sample as object) };

    // when
    const parsed = parseServerFrame(frame);

    // then
    expect(parsed).toEqual({ ok: true, frame });
  });

  it.each(samples(invalidFrameFiles))('rejects %s with a reason', (_name, sample) => {
    // given a malformed frame

    // when
    const parsed = parseServerFrame(sample);

    // then
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.reason).toMatch(/\S/);
  });

  it('keeps fields it does not know, so a newer server does not break the client', () => {
    // given
    const frame = { type: 'subscribed', topic: 'job:abc', seq: 3, epoch: 9, added_later: true };

    // when
    const parsed = parseServerFrame(frame);

    // then
    expect(parsed).toEqual({ ok: true, frame });
  });

  it('names the offending field in its reason', () => {
    // given
    const frame = { type: 'subscribed', topic: 'job:abc', seq: '3' };

    // when
    const parsed = parseServerFrame(frame);

    // then
    expect(parsed).toEqual({
      ok: false,
      reason: 'subscribed frame: "seq" must be a non-negative integer, got "3"',
    });
  });
});

describe('parseStateDocument', () => {
  it.each(samples(validDocumentFiles))('accepts %s', (_name, sample) => {
    // given a progress endpoint body

    // when
    const parsed = parseStateDocument(sample);

    // then
    expect(parsed).toEqual({ ok: true, document: sample });
  });

  it.each(httpProgressAnswers().map((answer) => [answer.status, answer] as const))(
    'reads the body of a %s progress answer only when it is a 200',
    (status, answer) => {
      // given an HTTP answer of a progress endpoint

      // when
      const parsed = parseStateDocument(answer.body);

      // then
      expect(parsed.ok).toBe(status === 200);
      if (status !== 200) expect(answer.body).toMatchObject({ code: expect.any(String) });
    },
  );

  it.each(samples(invalidDocumentFiles))('rejects %s with a reason', (_name, sample) => {
    // given a body that is not a state document

    // when
    const parsed = parseStateDocument(sample);

    // then
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.reason).toMatch(/\S/);
  });
});
