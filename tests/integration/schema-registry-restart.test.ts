/**
 * The local Schema Registry keeps its schemas across a restart of itself and of Kafka: Karapace
 * holds nothing on disk, it replays the Kafka topic _schemas when it starts, so the ids it gave
 * before come back the same, and a new schema never reuses one of them.
 * Restarts go through the project's own scripts/services (down/up), which must return only once
 * the registry takes writes (/master_available): the first thing checked after each. Needs `scripts/services up`
 * (zookeeper, kafka,
 * schema-registry); leaves them running.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { USERS_VALUE_SUBJECT } from "../../runtime/contracts/names";
import { loadServicesEnv } from "../support/services";
import { registryCall, sampleRecord, Subjects, uniqueRecord, waitWritable } from "../support/registry";

const REPO = join(__dirname, "../..");
const AVSC = readFileSync(join(REPO, "runtime/contracts/user-created.avsc"), "utf8");

/** scripts/services <verb> <names...>; it takes a lock per PIPELINE_HOME, so it may wait for others. */
async function services(verb: "up" | "down", names: string[], env: Record<string, string> = {}): Promise<void> {
  try {
    await promisify(execFile)(join(REPO, "scripts/services"), [verb, ...names], {
      cwd: REPO,
      env: { ...process.env, ...env },
      timeout: 900_000,
      maxBuffer: 16 << 20,
    });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`scripts/services ${verb} ${names.join(" ")} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

type Registered = { subject: string; schema: string; id: number; version: number };

describe("local Schema Registry keeps its schemas across restarts", function () {
  this.timeout(900_000);
  let url: string;
  const subjects = new Subjects("regrestart");
  const before_: Registered[] = [];
  let bytes: Buffer;
  let record: Record<string, unknown>;

  /** Every schema registered before the restarts is there with the same id and version. */
  async function assertSameIds(when: string): Promise<void> {
    const client = new SchemaRegistry({ host: url }); // empty cache: every answer comes from the registry
    // No waiting here: `scripts/services up` returned, so the registry must take writes now (its
    // health is /master_available, not a mere answer to GET /subjects).
    const fresh = await client
      .register(
        { type: SchemaType.AVRO, schema: uniqueRecord([{ name: "id", type: "string" }]) },
        { subject: subjects.next() },
      )
      .catch((err: Error) => assert.fail(`${when}: scripts/services up returned but a write failed: ${err.message}`));
    assert.ok(!before_.some((r) => r.id === fresh.id), `${when}: a new schema got id ${fresh.id}, already in use`);
    for (const r of before_) {
      const lookup = await registryCall(url, "POST", `/subjects/${r.subject}`, { schema: r.schema });
      assert.equal(lookup.status, 200, `${when}: ${r.subject} lookup: ${JSON.stringify(lookup.body)}`);
      assert.equal(lookup.body.id, r.id, `${when}: ${r.subject} has id ${String(lookup.body.id)}, had ${r.id}`);
      assert.equal(lookup.body.version, r.version, `${when}: ${r.subject} version`);
      const again = await client.register({ type: SchemaType.AVRO, schema: r.schema }, { subject: r.subject });
      assert.equal(again.id, r.id, `${when}: registering ${r.subject} again gives the id it had`);
    }
    assert.deepEqual({ ...(await client.decode(bytes)) }, record, `${when}: a message written before decodes`);
  }

  before(async () => {
    url = loadServicesEnv(["SCHEMA_REGISTRY_URL"]).SCHEMA_REGISTRY_URL;
    await waitWritable(url);
    const client = new SchemaRegistry({ host: url });
    const name = `R${Date.now()}`;
    const schemas: [string, string][] = [
      [USERS_VALUE_SUBJECT, AVSC],
      [subjects.next(), uniqueRecord([{ name: "id", type: "string" }], name)],
      [subjects.next(), uniqueRecord([{ name: "id", type: "string" }], name)],
    ];
    // Two versions under one subject: a compatible evolution.
    schemas.push([
      schemas[2][0],
      uniqueRecord(
        [
          { name: "id", type: "string" },
          { name: "n", type: "long", default: 0 },
        ],
        name,
      ),
    ]);
    for (const [subject, schema] of schemas) {
      const { id } = await client.register({ type: SchemaType.AVRO, schema }, { subject });
      const lookup = await registryCall(url, "POST", `/subjects/${subject}`, { schema });
      before_.push({ subject, schema, id, version: Number(lookup.body.version) });
    }
    record = sampleRecord(JSON.parse(AVSC));
    bytes = await client.encode(before_[0].id, record);
  });

  after(async () => {
    // Leave the services as the ring found them (up), whatever happened above.
    await services("up", ["zookeeper", "kafka", "schema-registry"]);
    if (!url) return;
    await waitWritable(url);
    await subjects.drop(url);
  });

  it("after a restart of the registry", async () => {
    await services("down", ["schema-registry"]);
    await assert.rejects(fetch(`${url}/subjects`), "the registry is down");
    // Upstream's 5 s wait before acting as primary (start.sh makes it 0 for one instance) widens the
    // time in which GET /subjects answers 200 but writes fail with 500 / 50003 from ~1 s to ~6 s:
    // `up` must still return only once writes work.
    await services("up", ["schema-registry"], { KARAPACE_WAITING_TIME_BEFORE_ACTING_AS_MASTER_MS: "5000" });
    await assertSameIds("after the registry restarted");
  });

  it("after a restart of Kafka under the running registry", async () => {
    await services("down", ["kafka"]);
    await services("up", ["kafka"]);
    await services("up", ["schema-registry"]); // waits until it takes writes again (it keeps running)
    await assertSameIds("after Kafka restarted");
  });

  it("after a restart of both", async () => {
    await services("down", ["kafka", "schema-registry"]);
    await services("up", ["kafka", "schema-registry"]);
    await assertSameIds("after Kafka and the registry restarted");
  });
});
