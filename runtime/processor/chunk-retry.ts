/**
 * A chunk retried in place while a dependency fails (Cassandra, the registry, Kafka, the DLQ): the
 * member keeps heartbeating, so it keeps its partitions and its offsets stay where they are.
 */
import type { KafkaMessage } from "kafkajs";
import { Gauge, type Registry } from "prom-client";
import { classify, describe, SchemaLostError } from "../lib/errors";
import { markFailing, partitionKey } from "../lib/health";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { backoffDelay, INFRA_RETRY } from "../lib/retry";
import { sleep } from "../lib/sleep";
import type { ChunkOutcome, ChunkStore } from "./chunk-store";
import { asRejoin } from "./coordinator";
import { DlqDelivery } from "./dlq-sender";

export const HEALTH = "processor";

/** What the retry needs of the batch it runs in (kafkajs's eachBatch payload). */
export interface BatchControl {
  partition: number;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

export interface ChunkRetryContext {
  chunks: ChunkStore;
  log: Logger;
  signal: AbortSignal;
  heartbeatMs: number;
  schemaLost: Gauge<"partition">;
}

/** 1 while a partition is stopped on a schema id the registry lost or reassigned (alert on it). */
export function schemaLostGauge(registry: Registry): Gauge<"partition"> {
  const existing = registry.getSingleMetric("pipeline_schema_lost") as Gauge<"partition"> | undefined;
  return (
    existing ??
    new Gauge({
      name: "pipeline_schema_lost",
      help: "1 while the partition is stopped: the registry lost or reassigned the schema id of our relay's records",
      labelNames: ["partition"],
      registers: [registry],
    })
  );
}

/**
 * Store the chunk, retrying infrastructure failures with backoff for as long as it takes; its dead
 * letters are sent once over all attempts (one DlqDelivery). Undefined when the batch ended while
 * waiting (a rebalance, a stop): nothing of the chunk may be committed then.
 */
export async function storeChunkWithRetry(
  chunk: KafkaMessage[],
  batch: BatchControl,
  ctx: ChunkRetryContext,
): Promise<ChunkOutcome | undefined> {
  const delivery = new DlqDelivery();
  for (let attempt = 0; ; attempt++) {
    // a chunk's writes can outlast the session on a loaded host: keep heartbeating meanwhile,
    // or the group evicts us mid-chunk and every commit after it fails. Errors (a rebalance)
    // surface at the heartbeat after the chunk, where kafkajs expects them.
    const beating = setInterval(() => void batch.heartbeat().catch(() => undefined), ctx.heartbeatMs);
    try {
      return await ctx.chunks.store(chunk, batch.partition, delivery);
    } catch (e) {
      if (classify(e) !== "infrastructure") throw e;
      await waitBeforeRetry(e, attempt, batch, ctx);
      if (!batch.isRunning() || batch.isStale() || ctx.signal.aborted) return undefined;
    } finally {
      clearInterval(beating);
    }
  }
}

async function waitBeforeRetry(e: unknown, attempt: number, batch: BatchControl, ctx: ChunkRetryContext) {
  const partition = batch.partition;
  markFailing(partitionKey(HEALTH, partition), describe(e));
  if (e instanceof SchemaLostError) {
    ctx.schemaLost.set({ partition: String(partition) }, 1);
    ctx.log.error({ partition, schemaId: e.schemaId, err: describe(e) }, "partition stopped: schema lost");
  }
  metrics().retries.inc({ worker: "processor" });
  const delay = backoffDelay(attempt, INFRA_RETRY) + 50;
  const why = { partition, err: describe(e), attempt: attempt + 1, delay };
  ctx.log.warn(why, "chunk not stored (dependency down); retrying, offset kept");
  await sleep(delay, ctx.signal);
  // keep our partitions while we wait: a rebalance or a dead broker ends the batch here
  // (a lost coordinator: a rejoin under the same member id, coordinator.ts)
  await batch.heartbeat().catch((err: unknown) => {
    throw asRejoin(err);
  });
}
