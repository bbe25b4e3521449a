import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { CONTRACT_VERSION, OUTPUT_NAMES, SECRET_OUTPUTS } from "../../../infra/outputs";
import { DLQ_TOPIC, KEYSPACE, USERS_TOPIC } from "../../../runtime/contracts/names";
import { containers, DEV_CONFIG, devRun, envOf, hostnameOf, resolve, Run, runProgram } from "./harness";

/** Resolves one level of objects of Outputs; records which outputs hold a secret anywhere. */
async function settleOutputs(outputs: object): Promise<{ values: Record<string, unknown>; secret: Set<string> }> {
  const values: Record<string, unknown> = {};
  const secret = new Set<string>();
  for (const [k, v] of Object.entries(outputs)) {
    if (typeof v === "object" && !("apply" in v)) {
      const fields = await Promise.all(Object.entries(v).map(async ([k2, v2]) => [k2, await resolve(v2)] as const));
      values[k] = Object.fromEntries(fields.map(([k2, r]) => [k2, r.value]));
      if (fields.some(([, r]) => r.secret)) secret.add(k);
    } else {
      const r = await resolve(v);
      values[k] = r.value;
      if (r.secret) secret.add(k);
    }
  }
  return { values, secret };
}

describe("infra: the stack-output contract", () => {
  let run: Run;
  let out: Record<string, unknown>;
  let secret: Set<string>;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
    ({ values: out, secret } = await settleOutputs(run.outputs!));
  });

  it("has exactly the documented names", () => {
    assert.deepEqual(Object.keys(out).sort(), [...OUTPUT_NAMES].sort());
    const doc = fs.readFileSync("docs/reference.md", "utf8");
    for (const n of OUTPUT_NAMES)
      assert.match(doc, new RegExp("\\| `" + n + "` \\|"), `docs/reference.md has no row for ${n}`);
  });

  it("says its version, and CHANGELOG.md's newest entry is that version", () => {
    assert.equal(out.contractVersion, CONTRACT_VERSION);
    assert.match(CONTRACT_VERSION, /^[0-9]+(\.[0-9]+)?$/);
    const newest = /^## (\S+)/m.exec(fs.readFileSync("CHANGELOG.md", "utf8"))?.[1];
    assert.equal(newest, CONTRACT_VERSION, "CHANGELOG.md: the newest entry is not the contract's version");
  });

  it("keeps each secret in an output of its own: no object mixes secret and plain fields", () => {
    // A StackReference would mark the whole object secret (host, port and user too).
    assert.deepEqual([...secret].sort(), [...SECRET_OUTPUTS].sort());
    for (const s of SECRET_OUTPUTS) assert.equal(typeof out[s], "string", s);
  });

  it("has the right shapes and values", () => {
    const hosts = new Set(containers(run).map(hostnameOf));
    assert.deepEqual(out.network, { kind: "docker-network", name: "realtime-pipeline-dev-net" });
    assert.deepEqual(out.kafkaBootstrapServers, { internal: "kafka:29092", host: "127.0.0.1:9092" });
    assert.deepEqual(out.schemaRegistryUrl, { internal: "http://schema-registry:8081", host: "http://127.0.0.1:8081" });
    assert.equal(out.controlCenterUrl, "http://127.0.0.1:9021");
    assert.equal(out.airflowUrl, "http://127.0.0.1:8088");
    assert.equal(out.sparkMasterUrl, "spark://spark-master:7077");
    assert.equal(out.sparkUiUrl, "http://127.0.0.1:8090");
    assert.deepEqual(out.cassandraContactPoints, { internal: "cassandra:9042", host: "127.0.0.1:9042" });
    assert.equal(out.cassandraKeyspace, KEYSPACE);
    assert.equal(out.cassandraUser, "pipeline");
    const pg = out.postgres as Record<string, unknown>;
    assert.deepEqual(Object.keys(pg).sort(), ["database", "host", "port", "user"]);
    assert.ok(hosts.has(pg.host as string));
    assert.equal(pg.port, 5432);
    assert.equal(pg.database, "pipeline");
    assert.deepEqual(out.topics, { users: USERS_TOPIC, deadLetter: DLQ_TOPIC });
    assert.equal(out.airflowAdminUser, "admin");
  });

  it("follow the configured bind address and ports", async () => {
    const r = await runProgram({
      ...DEV_CONFIG,
      bindAddress: "0.0.0.0",
      advertisedHost: "dev-box.lan",
      ports: JSON.stringify({ kafka: 19092 }),
    });
    // Every interface: LAN clients dial the host's name (localhost would send them to themselves).
    assert.deepEqual(r.outputs!.kafkaBootstrapServers, { internal: "kafka:29092", host: "dev-box.lan:19092" });
    const kafka = containers(r).find((c) => hostnameOf(c) === "kafka")!;
    assert.match(envOf(kafka).KAFKA_ADVERTISED_LISTENERS, /EXTERNAL:\/\/dev-box\.lan:19092/);
    const missing = await runProgram({ ...DEV_CONFIG, bindAddress: "0.0.0.0" });
    assert.match(String(missing.error), /realtime-pipeline:advertisedHost: is required when bindAddress is 0\.0\.0\.0/);
  });
});
