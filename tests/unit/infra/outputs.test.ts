import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { OUTPUT_NAMES } from "../../../infra/outputs";
import { DLQ_TOPIC, KEYSPACE, USERS_TOPIC } from "../../../runtime/contracts/names";
import { containers, DEV_CONFIG, devRun, hostnameOf, resolve, Run, runProgram } from "./harness";

describe("infra: the stack-output contract", () => {
  let run: Run;
  let out: Record<string, unknown>;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
    out = {};
    for (const [k, v] of Object.entries(run.outputs!)) {
      out[k] = typeof v === "object" && !("apply" in v) ? Object.fromEntries(await Promise.all(Object.entries(v).map(async ([k2, v2]) => [k2, (await resolve(v2)).value]))) : (await resolve(v)).value;
    }
  });

  it("has exactly the documented names", () => {
    assert.deepEqual(Object.keys(out).sort(), [...OUTPUT_NAMES].sort());
    const doc = fs.readFileSync("README.md", "utf8");
    for (const n of OUTPUT_NAMES) assert.match(doc, new RegExp("`" + n + "[`.]"), `README.md does not document ${n}`);
  });

  it("has the right shapes and values", () => {
    const hosts = new Set(containers(run).map(hostnameOf));
    assert.deepEqual(out.kafkaBootstrapServers, { internal: "kafka:29092", host: "127.0.0.1:9092" });
    assert.equal(out.schemaRegistryUrl, "http://127.0.0.1:8081");
    assert.equal(out.controlCenterUrl, "http://127.0.0.1:9021");
    assert.equal(out.airflowUrl, "http://127.0.0.1:8088");
    assert.equal(out.sparkMasterUrl, "spark://spark-master:7077");
    assert.equal(out.sparkUiUrl, "http://127.0.0.1:8090");
    assert.equal(out.cassandraContactPoints, "127.0.0.1:9042");
    assert.equal(out.cassandraKeyspace, KEYSPACE);
    assert.equal(out.cassandraUser, "pipeline");
    assert.equal(typeof out.cassandraPassword, "string");
    const pg = out.postgres as Record<string, unknown>;
    assert.deepEqual(Object.keys(pg).sort(), ["database", "host", "password", "port", "user"]);
    assert.ok(hosts.has(pg.host as string));
    assert.equal(pg.port, 5432);
    assert.equal(pg.database, "pipeline");
    assert.equal(typeof pg.password, "string");
    assert.deepEqual(out.topics, { users: USERS_TOPIC, deadLetter: DLQ_TOPIC });
    assert.equal((out.airflowAdmin as Record<string, unknown>).user, "admin");
  });

  it("follow the configured bind address and ports", async () => {
    const r = await runProgram({ ...DEV_CONFIG, bindAddress: "0.0.0.0", ports: JSON.stringify({ kafka: 19092 }) });
    assert.deepEqual(r.outputs!.kafkaBootstrapServers, { internal: "kafka:29092", host: "localhost:19092" });
  });
});
