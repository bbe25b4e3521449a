/**
 * A topic's max.message.bytes as a sender keeps it: read once, trusted for a minute, read again
 * sooner when Kafka refused a send for its size. A read that fails while a limit is in hand keeps
 * that limit (and is tried again a minute later, not before every send); the first read's failure,
 * or a programming error, is the caller's.
 */
import { classify, describe } from "./errors";
import type { MessageLimit } from "./kafka";
import type { Logger } from "./logger";

/** How long a limit read is trusted. */
export const TOPIC_LIMIT_TTL_MS = 60_000;

export class TopicLimit {
  private last?: MessageLimit;
  private readAt = 0;

  constructor(
    private readonly read: () => Promise<MessageLimit>,
    private readonly topic: string,
    private readonly log: Logger,
    private readonly ttlMs = TOPIC_LIMIT_TTL_MS,
  ) {}

  /** The limit last read; a caller that needs it fresh calls get() first. */
  get current(): MessageLimit {
    if (!this.last) throw new Error(`TopicLimit(${this.topic}): current asked before the first read`);
    return this.last;
  }

  /** The limit, read again when older than the TTL or marked stale. */
  async get(): Promise<MessageLimit> {
    if (this.last && Date.now() - this.readAt < this.ttlMs) return this.last;
    if (this.last) this.readAt = Date.now();
    try {
      const now = await this.read();
      if (this.last && now.bytes !== this.last.bytes) {
        this.log.warn({ topic: this.topic, was: this.last.source, now: now.source }, "topic size limit changed");
      }
      this.last = now;
      this.readAt = Date.now();
    } catch (e) {
      if (!this.last || classify(e) === "programming") throw e;
      this.log.debug({ topic: this.topic, err: describe(e) }, "the topic's size limit not read now; keeping the last");
    }
    return this.last;
  }

  /** Kafka refused a send for its size or settings: the next get() reads the limit again. */
  stale(): void {
    this.readAt = 0;
  }
}
