import assert from "node:assert/strict";
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from "kafkajs";
import { Registry } from "prom-client";
import { InfrastructureError } from "../../../runtime/lib/errors";
import { healthProblems } from "../../../runtime/lib/health";
import { createLogger } from "../../../runtime/lib/logger";
import { processorSchema, loadConfig } from "../../../runtime/lib/config";
import { schemaLostGauge, storeChunkWithRetry, type BatchControl } from "../../../runtime/processor/chunk-retry";
import type { ChunkOutcome, ChunkStore } from "../../../runtime/processor/chunk-store";
import { runConsumer, type ConsumerRunContext } from "../../../runtime/processor/consumer-run";
import type { DlqDelivery } from "../../../runtime/processor/dlq-sender";

const log = createLogger("processor-chunk-test", "silent");

function batchControl(partition: number): BatchControl & { heartbeats: number } {
  const control = {
    partition,
    heartbeats: 0,
    heartbeat: async () => void control.heartbeats++,
    isRunning: () => true,
    isStale: () => false,
  };
  return control;
}

function retryContext(store: (delivery: DlqDelivery) => Promise<ChunkOutcome>) {
  return {
    chunks: {
      store: (_m: KafkaMessage[], _p: number, delivery: DlqDelivery) => store(delivery),
    } as unknown as ChunkStore,
    log,
    signal: new AbortController().signal,
    heartbeatMs: 1000,
    schemaLost: schemaLostGauge(new Registry()),
  };
}

describe("processor: a chunk retried in place (storeChunkWithRetry)", () => {
  it("a dependency failure (the DLQ unreachable) is retried with the chunk's one delivery", async () => {
    const deliveries: DlqDelivery[] = [];
    const control = batchControl(7);
    const outcome = await storeChunkWithRetry([], control, retryContext(async (delivery) => {
      deliveries.push(delivery);
      if (deliveries.length < 3) throw new InfrastructureError("kafka: users_created.dlq not reachable");
      return { stored: 0, deadLetters: [] };
    }));
    assert.deepEqual(outcome, { stored: 0, deadLetters: [] });
    assert.equal(deliveries.length, 3);
    assert.ok(deliveries.every((d) => d === deliveries[0]), "one DlqDelivery across the attempts");
    assert.equal(control.heartbeats, 2, "a heartbeat after each wait: the partitions stay ours");
    assert.match(healthProblems()["processor[partition 7]"] ?? "", /users_created.dlq not reachable/);
  });

  it("a programming error is not retried", async () => {
    let attempts = 0;
    await assert.rejects(storeChunkWithRetry([], batchControl(0), retryContext(async () => {
      attempts++;
      throw new TypeError("x is undefined");
    })), TypeError);
    assert.equal(attempts, 1);
  });
});

describe("processor: a bug in a batch stops the consumer for good (runConsumer)", () => {
  it("ends the run with the error at once, although kafkajs would retry it or restart the consumer", async () => {
    const listeners = new Map<string, (e: unknown) => void>();
    let disconnected = false;
    const consumer = {
      events: {
        CRASH: "crash", GROUP_JOIN: "join", HEARTBEAT: "heartbeat", REBALANCING: "rebalancing", FETCH_START: "fetch",
      },
      on: (event: string, listener: (e: unknown) => void) => listeners.set(event, listener),
      connect: async () => undefined,
      subscribe: async () => undefined,
      disconnect: async () => void (disconnected = true),
      // kafkajs would catch what eachBatch throws and retry the fetch: nothing reaches CRASH here
      run: async ({ eachBatch }: { eachBatch: (p: EachBatchPayload) => Promise<void> }) => {
        setTimeout(() => void eachBatch({} as EachBatchPayload).catch(() => undefined), 10);
      },
    } as unknown as Consumer;
    const config = loadConfig(processorSchema, {
      KAFKA_BROKERS: "127.0.0.1:1", SCHEMA_REGISTRY_URL: "http://127.0.0.1:1",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1:9042", CASSANDRA_LOCAL_DC: "dc1",
    });
    const signal = new AbortController().signal;
    const ctx: ConsumerRunContext = {
      kafka: { consumer: () => consumer } as unknown as Kafka,
      config, topic: "users_created", log, signal, heartbeatMs: 250,
      lag: { admin: {} as never, groupId: "g", topic: "users_created", log },
      handleBatch: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'offset')");
      },
    };
    const stillRunning = new Promise((r) => setTimeout(() => r("still running"), 3000));
    const ended = await Promise.race([runConsumer(ctx, 1), stillRunning]);
    assert.ok(ended instanceof TypeError, String(ended));
    assert.ok(disconnected);
  });
});
