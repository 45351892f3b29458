// The HTTP fallback: polls a topic's progress endpoint while the socket does not serve it.
//
// Schedule: the adaptive interval counted from the start of the watch (schedule.ts), slow
// polling for a topic Redis does not know, and a penalty after 503 or a failed request (the
// server's Retry-After, else the interval doubled up to a cap) until a good answer clears it.
// At most one request per topic is in flight. What an answer means for the topic is the
// client's business: the poller reports states, missing topics and errors through PollEvents.
import type { HttpAnswer, HttpApi } from './http.js';
import { parseStateDocument } from './protocol.js';
import { parseRetryAfter, pollInterval } from './schedule.js';
import type { TopicSubscription } from './subscription.js';
import { TokenError, describeError } from './token.js';
import type { Logger, RealtimeError, StateDocument, Timers } from './types.js';

export interface PollEvents {
  /** A 200 answer with a well-formed state document. */
  state(sub: TopicSubscription, state: StateDocument): void;
  /** A 404: Redis holds nothing the caller may see. The next poll waits for the promise. */
  missing(sub: TopicSubscription): Promise<void>;
  /** Something the watchers should hear about. */
  error(sub: TopicSubscription, error: RealtimeError): void;
}

export interface PollerOptions {
  http: HttpApi;
  timers: Timers;
  now: () => number;
  logger: Logger;
  /** Interval while a topic is unknown to Redis. */
  slowPollMs: number;
  /** Upper bound of the doubled interval after 503 or a failed request. */
  maxPollBackoffMs: number;
}

/** Per topic: the next poll, whether one is in flight, and the current penalty. */
interface Slot {
  timer: unknown;
  inFlight: boolean;
  penaltyMs: number | undefined;
}

export class Poller {
  private readonly slots = new Map<TopicSubscription, Slot>();

  constructor(
    private readonly options: PollerOptions,
    private readonly events: PollEvents,
  ) {}

  /** Plans the next poll of a topic that wants one, unless one is planned or in flight. */
  schedule(sub: TopicSubscription): void {
    if (!sub.wantsPolling) return;
    const slot = this.slotOf(sub);
    if (slot.timer !== undefined || slot.inFlight) return;
    slot.timer = this.options.timers.setTimeout(() => {
      slot.timer = undefined;
      void this.poll(sub, slot);
    }, this.delay(sub, slot));
  }

  /** The socket serves the topic: no planned poll, and no penalty if it falls back later. */
  pause(sub: TopicSubscription): void {
    const slot = this.slots.get(sub);
    if (slot === undefined) return;
    this.cancel(slot);
    slot.penaltyMs = undefined;
  }

  /** The topic is over: nothing more is planned for it. */
  forget(sub: TopicSubscription): void {
    const slot = this.slots.get(sub);
    if (slot === undefined) return;
    this.cancel(slot);
    this.slots.delete(sub);
  }

  private slotOf(sub: TopicSubscription): Slot {
    let slot = this.slots.get(sub);
    if (slot === undefined) {
      slot = { timer: undefined, inFlight: false, penaltyMs: undefined };
      this.slots.set(sub, slot);
    }
    return slot;
  }

  private cancel(slot: Slot): void {
    if (slot.timer === undefined) return;
    this.options.timers.clearTimeout(slot.timer);
    slot.timer = undefined;
  }

  private delay(sub: TopicSubscription, slot: Slot): number {
    if (slot.penaltyMs !== undefined) return slot.penaltyMs;
    if (sub.state === 'not_found') return this.options.slowPollMs;
    return pollInterval(this.options.now() - sub.startedAt);
  }

  private async poll(sub: TopicSubscription, slot: Slot): Promise<void> {
    if (!sub.wantsPolling) return;
    slot.inFlight = true;
    try {
      const answer = await this.options.http.progress(sub.topic);
      if (sub.ended) return;
      await this.answered(sub, slot, answer);
    } catch (error) {
      if (sub.ended) return;
      if (error instanceof TokenError) {
        this.events.error(sub, { code: 'auth_failed', message: error.message, topic: sub.topic });
      } else {
        this.options.logger.warn(`polling ${sub.topic} failed: ${describeError(error)}`);
      }
      this.penalise(sub, slot);
    } finally {
      slot.inFlight = false;
      this.schedule(sub);
    }
  }

  private async answered(sub: TopicSubscription, slot: Slot, answer: HttpAnswer): Promise<void> {
    switch (answer.status) {
      case 200: {
        slot.penaltyMs = undefined;
        const parsed = parseStateDocument(await answer.json());
        if (!parsed.ok) {
          this.options.logger.warn(`malformed progress of ${sub.topic} dropped: ${parsed.reason}`);
          return;
        }
        this.events.state(sub, parsed.document);
        return;
      }
      case 404:
        slot.penaltyMs = undefined;
        await this.events.missing(sub);
        return;
      case 503: {
        const retryAfter = answer.headers.get('Retry-After');
        this.penalise(sub, slot, parseRetryAfter(retryAfter, this.options.now()));
        return;
      }
      case 401:
        this.events.error(sub, {
          code: 'auth_failed',
          message: 'the server refused a fresh token',
          topic: sub.topic,
          httpStatus: 401,
        });
        this.penalise(sub, slot);
        return;
      default:
        this.events.error(sub, {
          code: 'http_error',
          message: `progress answered HTTP ${answer.status}`,
          topic: sub.topic,
          httpStatus: answer.status,
        });
        this.penalise(sub, slot);
    }
  }

  /** Slows polling down: the server's Retry-After, else double the interval, capped. */
  private penalise(sub: TopicSubscription, slot: Slot, retryAfterMs?: number): void {
    const current = slot.penaltyMs ?? pollInterval(this.options.now() - sub.startedAt);
    slot.penaltyMs = retryAfterMs ?? Math.min(this.options.maxPollBackoffMs, current * 2);
  }
}
