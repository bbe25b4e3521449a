/**
 * A relay round loop: rounds one after another on its own PostgreSQL connection, bucket locks and
 * producer. After ANY failed send the producer is thrown away and a new one (new producer id) is
 * built: after bounded retries kafkajs rolls the partition's sequence numbers back, and the next
 * send could put other rows on the same numbers, which the broker acks as duplicates without
 * writing them. One loop's failure never touches another's producer.
 */
import { Partitioners, type Admin, type Kafka } from "kafkajs";
import type { Pool } from "pg";
import type { AvroType } from "../lib/avro";
import type { RelayConfig } from "../lib/config";
import { classify, describe } from "../lib/errors";
import { markFailing, markHealthy } from "../lib/health";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { OwnedProducer } from "../lib/owned-producer";
import { backoffDelay, INFRA_RETRY } from "../lib/retry";
import { sleep } from "../lib/sleep";
import type { TopicLimit } from "../lib/topic-limit";
import type { PendingGauge, Refusals } from "./loop-state";
import { relayRound, SendRefused, type RoundContext, type RoundResult } from "./round";

export interface RelayTotals {
  published: number;
  parked: number;
  rounds: number;
  failedRounds: number;
}

/** What the round loops of one relay share. */
export interface RelayShared {
  pool: Pool;
  kafka: Kafka;
  admin: Admin;
  config: RelayConfig;
  log: Logger;
  signal: AbortSignal;
  topic: string;
  type: AvroType;
  /** the schema id to encode with (the registry may hand out another: relay.ts) */
  schemaId(): number;
  limit: TopicLimit;
  refusals: Refusals;
  pending: PendingGauge;
  totals: RelayTotals;
  /** stop once the outbox has no unpublished rows */
  untilDrained?: boolean;
}

export class RoundLoop {
  private readonly producer: OwnedProducer;
  private failures = 0;
  private readonly health: string;

  constructor(
    private readonly index: number,
    private readonly shared: RelayShared,
  ) {
    this.health = `relay[${index}]`;
    // Retries are bounded on purpose (kafkajs warns about it): a send that keeps failing must end
    // the round, roll the claim back and free the buckets, rather than hold them forever.
    this.producer = new OwnedProducer(() =>
      shared.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      }),
    );
  }

  async run(): Promise<void> {
    const { signal, config } = this.shared;
    try {
      while (!signal.aborted) {
        this.shared.pending.refreshInBackground();
        const endTimer = metrics().batchSeconds.startTimer({ worker: "relay" });
        const round: Partial<RoundContext> = {};
        let result: RoundResult;
        try {
          result = await this.round(round);
        } catch (e) {
          await this.afterFailure(e, round);
          continue;
        }
        this.count(result);
        if (result.published + result.parked > 0) {
          endTimer();
          continue;
        }
        if (await this.drained()) break;
        await sleep(config.RELAY_POLL_MS, signal);
      }
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    await this.producer.drop();
  }

  /** One round with this loop's producer (built when there is none); `round` says what it got to. */
  private async round(round: Partial<RoundContext>): Promise<RoundResult> {
    const shared = this.shared;
    await shared.limit.get();
    const producer = await this.producer.get();
    Object.assign(round, {
      pool: shared.pool,
      kafka: shared.kafka,
      admin: shared.admin,
      producer,
      schemaId: shared.schemaId(),
      type: shared.type,
      config: shared.config,
      log: shared.log,
      topic: shared.topic,
      limit: shared.limit.current,
      refused: shared.refusals.refused,
      suspects: shared.refusals.suspects,
    } satisfies RoundContext);
    const result = await relayRound(round as RoundContext);
    if (this.failures > 0) {
      shared.log.info({ loop: this.index, failures: this.failures }, "relay round succeeded again");
    }
    this.failures = 0;
    markHealthy(this.health);
    return result;
  }

  private async afterFailure(e: unknown, round: Partial<RoundContext>): Promise<void> {
    const { log, signal, totals } = this.shared;
    if (classify(e) === "programming") throw e;
    if (e instanceof SendRefused) {
      // what Kafka will never take: the limit read again (the pre-check parks what is over it),
      // and the send's rows tried alone, so that the one refused alone is parked with why
      this.shared.limit.stale();
      await this.shared.limit.get();
      this.shared.refusals.note(e);
      // the round was rolled back: its sent part is reconciled, its rows claimed again
      this.failures = 0;
    }
    totals.failedRounds++;
    markFailing(this.health, describe(e));
    metrics().retries.inc({ worker: "relay" });
    // a new producer id: the old one's sequence numbers are no longer to be trusted
    if (round.sent || !round.producer) await this.close();
    const delay = backoffDelay(this.failures++, INFRA_RETRY) + 50;
    const why = { loop: this.index, err: describe(e), delay, producerRebuilt: !this.producer.held };
    log.warn(why, "relay round failed; rows given back, retrying");
    await sleep(delay, signal);
  }

  private count(result: RoundResult): void {
    const totals = this.shared.totals;
    const workerMetrics = metrics();
    totals.rounds++;
    if (result.settled) this.shared.refusals.settle(result.settled);
    totals.parked += result.parked;
    if (result.parked > 0) workerMetrics.recordsFailed.inc({ worker: "relay", reason: "parked" }, result.parked);
    if (result.published + result.parked === 0) return;
    totals.published += result.published;
    workerMetrics.recordsIn.inc({ worker: "relay" }, result.published + result.parked);
    workerMetrics.recordsOut.inc({ worker: "relay" }, result.published);
    this.shared.log.debug({ published: result.published, parked: result.parked }, "round done");
  }

  /**
   * After an empty round: the background count keeps the gauge; only a relay that stops when the
   * outbox is drained needs a count of its own, now.
   */
  private async drained(): Promise<boolean> {
    if (!this.shared.untilDrained) return false;
    let pending = -1;
    try {
      pending = await this.shared.pending.count();
    } catch (e) {
      if (classify(e) === "programming") throw e;
    }
    return pending === 0;
  }
}
