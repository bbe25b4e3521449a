import assert from "node:assert/strict";
import { CLIENT_RETRY, CONSUMER_RETRY, retryBudgetMs } from "../../../runtime/lib/kafka";
import { loadConfig, processorSchema } from "../../../runtime/lib/config";

describe("the processor's consumer retries (runtime/lib/kafka.ts CONSUMER_RETRY)", () => {
  const session = loadConfig(processorSchema, {
    PG_DATABASE: "p",
    PG_USER: "p",
    KAFKA_BROKERS: "127.0.0.1:9092",
    SCHEMA_REGISTRY_URL: "http://127.0.0.1:8081",
    CASSANDRA_CONTACT_POINTS: "127.0.0.1:9042",
    CASSANDRA_LOCAL_DC: "dc1",
  }).PROCESSOR_SESSION_TIMEOUT_MS;

  it("outlast a failover (the local set's 4 s session, new leaders, the group's reload: 4.0-5.5 s after a kill, ~7 s loaded), in steps of at most 600 ms", () => {
    assert.equal(retryBudgetMs(CONSUMER_RETRY), 9_080);
    assert.ok(
      retryBudgetMs(CONSUMER_RETRY) > 2 * session,
      `${retryBudgetMs(CONSUMER_RETRY)} ms of retries: a rejoin's coordinator lookup would give up before the failover`,
    );
    assert.ok(CONSUMER_RETRY.maxRetryTime <= 600);
  });

  it("the budget follows kafkajs's schedule: 200, 480, 1000, 1000, 1000 ms at most; 10 retries up to 2 s came to ~15.8 s", () => {
    assert.equal(retryBudgetMs({ retries: 5, initialRetryTime: 200, maxRetryTime: 1_000 }), 3_680);
    assert.equal(retryBudgetMs({ retries: 10, initialRetryTime: 200, maxRetryTime: 2_000 }), 15_832);
  });
});

describe("every client's retries (runtime/lib/kafka.ts CLIENT_RETRY)", () => {
  it("about 6 s in all (a failover of the local set's 4 s session fits), in steps of at most 600 ms: a try within 0.6 s of the new leaders", () => {
    assert.equal(retryBudgetMs(CLIENT_RETRY), 6_316);
    assert.ok(CLIENT_RETRY.maxRetryTime <= 600);
  });
});
