/**
 * One consumer of the processor's group, from its start until it stops for good: a stop signal,
 * caught up (one-shot mode), or a crash kafkajs does not restart from (then the caller builds a
 * new one).
 */
import type { Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { ProcessorConfig } from "../lib/config";
import { describe } from "../lib/errors";
import { keepPartitions, markFailing, markHealthy } from "../lib/health";
import { CONSUMER_RETRY } from "../lib/kafka";
import type { Logger } from "../lib/logger";
import { untilAvailable } from "../lib/retry";
import { HEALTH } from "./chunk-retry";
import { CoordinatorLost, watchCoordinator } from "./coordinator";
import { watchLag, type LagWatch } from "./lag";

export interface ConsumerRunContext {
  kafka: Kafka;
  config: ProcessorConfig;
  topic: string;
  log: Logger;
  signal: AbortSignal;
  heartbeatMs: number;
  lag: Omit<LagWatch, "signal">;
  /** eachBatch; `checkCoordinator` throws when another batch found the coordinator lost */
  handleBatch(payload: EachBatchPayload, checkCoordinator: () => void): Promise<void>;
}

/** Undefined when stopped or caught up; else the error the consumer stopped for good with. */
export async function runConsumer(ctx: ConsumerRunContext, run: number): Promise<Error | undefined> {
  const { config, log } = ctx;
  const consumer = newConsumer(ctx);
  let endWith: (e: Error) => void = () => undefined;
  const ended = new Promise<Error>((resolve) => (endWith = resolve));
  consumer.on(consumer.events.CRASH, (event) => {
    markFailing(HEALTH, `consumer crashed: ${event.payload.error.message}`);
    if (!event.payload.restart)
      endWith(event.payload.error); // kafkajs gave up on it: we start a new one
    else log.warn({ err: describe(event.payload.error) }, "consumer crashed; kafkajs restarts it");
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    markHealthy(HEALTH);
    // a partition moved to another member is its health now; ours that stay, stay failing
    keepPartitions(HEALTH, event.payload.memberAssignment[ctx.topic] ?? []);
  });
  const coordinator = watchCoordinator(consumer, config.PROCESSOR_SESSION_TIMEOUT_MS);
  const lagStop = new AbortController();
  try {
    await untilAvailable(
      "kafka: consumer start",
      async () => {
        await consumer.connect();
        await consumer.subscribe({ topic: ctx.topic, fromBeginning: true });
      },
      { signal: ctx.signal, log, health: HEALTH },
    );
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.PROCESSOR_PARTITIONS_CONCURRENCY,
      eachBatch: async (payload) => {
        try {
          await ctx.handleBatch(payload, coordinator.check);
        } catch (e) {
          if (e instanceof CoordinatorLost) coordinator.lost();
          throw e;
        }
      },
    });
    log.info({ group: config.PROCESSOR_GROUP_ID, run }, "processor started");
    // watch the lag (metric) until stopped, or until caught up in one-shot mode
    const watching = watchLag({ ...ctx.lag, signal: AbortSignal.any([ctx.signal, lagStop.signal]) });
    return await Promise.race([ended, watching.then(() => undefined)]);
  } finally {
    lagStop.abort();
    await consumer.disconnect().catch(() => undefined); // leaves the group: partitions move at once
  }
}

function newConsumer(ctx: ConsumerRunContext): Consumer {
  const config = ctx.config;
  return ctx.kafka.consumer({
    groupId: config.PROCESSOR_GROUP_ID,
    maxBytes: 16 << 20,
    minBytes: config.PROCESSOR_FETCH_MIN_BYTES,
    // kafkajs heartbeats between fetches: a fetch's wait must end well inside the session (its
    // default, 5 s, outlasts a 3 s session on an idle topic), so at most one heartbeat interval
    maxWaitTimeInMs: Math.min(config.PROCESSOR_FETCH_MAX_WAIT_MS, ctx.heartbeatMs),
    sessionTimeout: config.PROCESSOR_SESSION_TIMEOUT_MS,
    heartbeatInterval: ctx.heartbeatMs,
    rebalanceTimeout: 30_000,
    retry: { ...CONSUMER_RETRY },
  });
}
