import assert from "node:assert/strict";
import type { KafkaMessage } from "kafkajs";
import { Registry } from "prom-client";
import { InfrastructureError } from "../../../runtime/lib/errors";
import { healthProblems } from "../../../runtime/lib/health";
import { createLogger } from "../../../runtime/lib/logger";
import { schemaLostGauge, storeChunkWithRetry, type BatchControl } from "../../../runtime/processor/chunk-retry";
import type { ChunkOutcome, ChunkStore } from "../../../runtime/processor/chunk-store";
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
    const outcome = await storeChunkWithRetry(
      [],
      control,
      retryContext(async (delivery) => {
        deliveries.push(delivery);
        if (deliveries.length < 3) throw new InfrastructureError("kafka: users_created.dlq not reachable");
        return { stored: 0, deadLetters: [] };
      }),
    );
    assert.deepEqual(outcome, { stored: 0, deadLetters: [] });
    assert.equal(deliveries.length, 3);
    assert.ok(
      deliveries.every((d) => d === deliveries[0]),
      "one DlqDelivery across the attempts",
    );
    assert.equal(control.heartbeats, 2, "a heartbeat after each wait: the partitions stay ours");
    assert.match(healthProblems()["processor[partition 7]"] ?? "", /users_created.dlq not reachable/);
  });

  it("a programming error is not retried", async () => {
    let attempts = 0;
    await assert.rejects(
      storeChunkWithRetry(
        [],
        batchControl(0),
        retryContext(async () => {
          attempts++;
          throw new TypeError("x is undefined");
        }),
      ),
      TypeError,
    );
    assert.equal(attempts, 1);
  });
});
