/**
 * One kafkajs batch of a partition, chunk by chunk: each chunk stored (chunk-retry.ts), then its
 * offset committed, so that nothing is committed past a message not in Cassandra or the DLQ.
 */
import type { EachBatchPayload } from "kafkajs";
import type { ProcessorConfig } from "../lib/config";
import { markHealthy, partitionKey } from "../lib/health";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { storeChunkWithRetry, HEALTH, type ChunkRetryContext } from "./chunk-retry";
import { asRejoin, commitOrRejoin } from "./coordinator";

/** How often a commit under way checks that the coordinator still answers heartbeats. */
const COMMIT_PROBE_MS = 250;
const nextOffset = (offset: string) => (BigInt(offset) + 1n).toString();

export interface BatchTotals {
  stored: number;
  deadLettered: number;
  batches: number;
}

export interface BatchContext extends ChunkRetryContext {
  config: ProcessorConfig;
  log: Logger;
  totals: BatchTotals;
  /** another partition's batch found the coordinator lost: no write, no wait (coordinator.ts) */
  checkCoordinator(): void;
  /** a chunk was committed (the one-shot mode's idle clock) */
  onProgress(): void;
}

export async function handleBatch(payload: EachBatchPayload, ctx: BatchContext): Promise<void> {
  const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
  const { config, log, totals } = ctx;
  const workerMetrics = metrics();
  const endTimer = workerMetrics.batchSeconds.startTimer({ worker: "processor" });
  const messages = batch.messages;
  const control = { partition: batch.partition, heartbeat, isRunning, isStale };
  workerMetrics.recordsIn.inc({ worker: "processor" }, messages.length);
  for (let i = 0; i < messages.length; i += config.PROCESSOR_CHUNK_SIZE) {
    if (!isRunning() || isStale()) break; // the rest is given back: not committed
    ctx.checkCoordinator();
    const chunk = messages.slice(i, i + config.PROCESSOR_CHUNK_SIZE);
    const outcome = await storeChunkWithRetry(chunk, control, ctx);
    if (!outcome) return;
    for (const letter of outcome.deadLetters) {
      const where = { partition: batch.partition, offset: letter.source.offset };
      log.warn({ ...where, reason: letter.reason.slice(0, 1000) }, "message dead-lettered");
    }
    const last = chunk[chunk.length - 1].offset;
    const next = { partition: batch.partition, offset: nextOffset(last) };
    resolveOffset(last);
    // a commit to a dead or moved coordinator ends the batch at once with a rejoin under
    // the same member id (coordinator.ts), not after kafkajs's retries and a crash
    await commitOrRejoin(
      // the payload's commit is kafkajs's consumerGroup.commitOffsets itself, without the retrier
      // of consumer.commitOffsets: a stale coordinator ("Broker N not found", ECONNREFUSED)
      // answers in one round trip and becomes a rejoin
      () => commitOffsetsIfNecessary({ topics: [{ topic: batch.topic, partitions: [next] }] }),
      heartbeat,
      COMMIT_PROBE_MS,
      config.PROCESSOR_SESSION_TIMEOUT_MS,
    );
    totals.stored += outcome.stored;
    totals.deadLettered += outcome.deadLetters.length;
    workerMetrics.recordsOut.inc({ worker: "processor" }, outcome.stored);
    for (const letter of outcome.deadLetters) {
      workerMetrics.recordsFailed.inc({ worker: "processor", reason: letter.reason.slice(0, 1000).split(":")[0] });
    }
    workerMetrics.consumerLag.set(
      { topic: batch.topic, partition: String(batch.partition), group: config.PROCESSOR_GROUP_ID },
      Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(nextOffset(last)))),
    );
    ctx.onProgress();
    // this partition's only: another partition's chunk may still be failing
    markHealthy(partitionKey(HEALTH, batch.partition));
    ctx.schemaLost.set({ partition: String(batch.partition) }, 0);
    await heartbeat().catch((e: unknown) => {
      throw asRejoin(e);
    });
  }
  totals.batches++;
  endTimer();
}
