import assert from "node:assert/strict";
import {
  ConfigError,
  ingestSchema,
  loadConfig,
  processorSchema,
  relaySchema,
  apiSchema,
} from "../../../runtime/lib/config";
import { kafkaBrokerSettings } from "../../../infra/catalog/settings";

const PG = { PG_DATABASE: "pipeline", PG_USER: "pipeline" };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("worker config (zod)", () => {
  it("applies defaults", () => {
    const c = loadConfig(ingestSchema, { ...PG, API_BASE_URL: "http://127.0.0.1:8000/" });
    assert.equal(c.PG_HOST, "127.0.0.1");
    assert.equal(c.PG_PORT, 5432);
    assert.equal(c.METRICS_PORT, 9464);
    assert.equal(c.LOG_LEVEL, "info");
    assert.equal(c.INGEST_BATCH_SIZE, 1000);
    assert.equal(c.API_BASE_URL, "http://127.0.0.1:8000");
  });

  it("names every bad variable once, with the fix", () => {
    const p = problems(() =>
      loadConfig(ingestSchema, {
        PG_USER: "u",
        PG_PORT: "abc",
        METRICS_PORT: "70000",
        API_BASE_URL: "not a url",
        INGEST_BATCH_SIZE: "6000",
        LOG_LEVEL: "loud",
      }),
    );
    assert.equal(p.length, 6, p.join("\n"));
    const by = (name: string) => p.filter((x) => x.startsWith(name + " "));
    assert.match(by("PG_DATABASE")[0], /is not set: set it to the PostgreSQL database name/);
    assert.match(by("PG_PORT")[0], /must be an integer between 1 and 65535 \(got "abc"\)/);
    assert.match(by("METRICS_PORT")[0], /must be ≤ 65535/);
    assert.match(by("API_BASE_URL")[0], /must be a URL/);
    assert.match(by("INGEST_BATCH_SIZE")[0], /must be ≤ 5000/);
    assert.match(by("LOG_LEVEL")[0], /must be one of/);
  });

  it("the error message lists each problem on its own line", () => {
    try {
      loadConfig(relaySchema, { ...PG });
      assert.fail("no error");
    } catch (e) {
      const msg = (e as Error).message;
      assert.match(msg, /^invalid configuration:\n {2}- KAFKA_BROKERS is not set/m);
      assert.match(msg, /\n {2}- SCHEMA_REGISTRY_URL is not set/);
    }
  });

  it("checks host:port lists", () => {
    const c = loadConfig(relaySchema, {
      ...PG,
      KAFKA_BROKERS: "a:9092, b:9093",
      SCHEMA_REGISTRY_URL: "http://127.0.0.1:8081",
    });
    assert.deepEqual(c.KAFKA_BROKERS, ["a:9092", "b:9093"]);
    const p = problems(() =>
      loadConfig(relaySchema, { ...PG, KAFKA_BROKERS: "localhost", SCHEMA_REGISTRY_URL: "http://x:1" }),
    );
    assert.deepEqual(p, [
      'KAFKA_BROKERS has "localhost", which is not host:port (KAFKA_BROKERS e.g. 127.0.0.1:9092) (got "localhost")',
    ]);
  });

  it("processor: Cassandra settings, replication factor and optional credentials", () => {
    const base = {
      KAFKA_BROKERS: "127.0.0.1:9092",
      SCHEMA_REGISTRY_URL: "http://127.0.0.1:8081",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1:9042",
      CASSANDRA_LOCAL_DC: "datacenter1",
    };
    const c = loadConfig(processorSchema, base);
    assert.equal(c.CASSANDRA_REPLICATION_FACTOR, 1);
    assert.equal(c.CASSANDRA_USER, undefined);
    const p = problems(() =>
      loadConfig(processorSchema, { ...base, CASSANDRA_REPLICATION_FACTOR: "0", CASSANDRA_LOCAL_DC: "" }),
    );
    assert.equal(p.length, 2);
    assert.ok(p.some((x) => x.startsWith("CASSANDRA_REPLICATION_FACTOR must be ≥ 1")));
    assert.ok(p.some((x) => x.startsWith("CASSANDRA_LOCAL_DC is empty")));
  });

  it("processor: its default session is one our brokers accept, and shorter than Kafka's own 6 s floor", () => {
    const base = {
      KAFKA_BROKERS: "127.0.0.1:9092",
      SCHEMA_REGISTRY_URL: "http://127.0.0.1:8081",
      CASSANDRA_CONTACT_POINTS: "127.0.0.1:9042",
      CASSANDRA_LOCAL_DC: "datacenter1",
    };
    const session = loadConfig(processorSchema, base).PROCESSOR_SESSION_TIMEOUT_MS;
    const broker = kafkaBrokerSettings({
      brokerId: 0,
      zookeeperConnect: "z:2181",
      listeners: { internal: "i", external: "e" },
      advertised: { internal: "i", external: "e" },
      logDirs: "/l",
      replicationFactor: 1,
    });
    const min = Number(broker["group.min.session.timeout.ms"]);
    assert.ok(
      session >= min,
      `the default session ${session} ms is below the brokers' minimum ${min} ms: the processor could not join`,
    );
    assert.ok(session < 6000, `a SIGKILLed processor holds its partitions ${session} ms: the 5 s resume needs less`);
    assert.match(
      problems(() => loadConfig(processorSchema, { ...base, PROCESSOR_SESSION_TIMEOUT_MS: String(min - 1) }))[0],
      /PROCESSOR_SESSION_TIMEOUT_MS/,
    );
  });

  it("api: fault rates are checked", () => {
    assert.equal(loadConfig(apiSchema, { API_FAULT_ERROR_RATE: "0.25" }).API_FAULT_ERROR_RATE, 0.25);
    const p = problems(() => loadConfig(apiSchema, { API_FAULT_ERROR_RATE: "2" }));
    assert.match(p[0], /^API_FAULT_ERROR_RATE must be ≤ 1/);
  });
});
