/**
 * The local Schema Registry (scripts/schema-registry/server.ts) keeps the Confluent semantics the
 * pipeline relies on: global ids, idempotent registration, compatibility checks, error codes.
 * Needs `scripts/services up` (postgres, schema-registry).
 */
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { loadServicesEnv } from "../support/services";

const CT = "application/vnd.schemaregistry.v1+json";

describe("local Schema Registry (Confluent REST API)", function () {
  this.timeout(30_000);
  let url: string;
  let registry: SchemaRegistry;
  const created: string[] = [];
  const subject = () => {
    const s = `smoke-${randomUUID()}-value`;
    created.push(s);
    return s;
  };
  const v1 = JSON.stringify({ type: "record", name: "Thing", namespace: "smoke", fields: [{ name: "id", type: "string" }] });
  const v2Backward = JSON.stringify({
    type: "record",
    name: "Thing",
    namespace: "smoke",
    fields: [
      { name: "id", type: "string" },
      { name: "n", type: "int", default: 0 },
    ],
  });
  const v3Breaking = JSON.stringify({ type: "record", name: "Thing", namespace: "smoke", fields: [{ name: "id", type: "int" }] });

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { "Content-Type": CT },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(() => {
    url = loadServicesEnv(["SCHEMA_REGISTRY_URL"]).SCHEMA_REGISTRY_URL;
    registry = new SchemaRegistry({ host: url });
  });

  after(async () => {
    for (const s of created) {
      await call("DELETE", `/subjects/${s}`);
      await call("DELETE", `/subjects/${s}?permanent=true`);
    }
  });

  it("gives the same global id to the same schema, under any subject, every time", async () => {
    const [s1, s2] = [subject(), subject()];
    const a = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s1 });
    const again = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s1 });
    const b = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s2 });
    assert.equal(again.id, a.id);
    assert.equal(b.id, a.id);
    assert.deepEqual((await call("GET", `/subjects/${s1}/versions`)).body, [1]);
  });

  it("accepts a backward-compatible evolution and rejects a breaking one with 409", async () => {
    const s = subject();
    const first = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s });
    const second = await registry.register({ type: SchemaType.AVRO, schema: v2Backward }, { subject: s });
    assert.notEqual(second.id, first.id);
    assert.equal(await registry.getLatestSchemaId(s), second.id);
    const breaking = await call("POST", `/subjects/${s}/versions`, { schema: v3Breaking });
    assert.equal(breaking.status, 409);
    assert.equal((await call("POST", `/compatibility/subjects/${s}/versions/latest`, { schema: v3Breaking })).body.is_compatible, false);
    assert.equal((await call("PUT", `/config/${s}`, { compatibility: "NONE" })).status, 200);
    assert.equal((await call("POST", `/subjects/${s}/versions`, { schema: v3Breaking })).status, 200);
  });

  it("answers with Confluent's error codes", async () => {
    assert.equal((await call("GET", `/subjects/${subject()}/versions`)).body.error_code, 40401);
    assert.equal((await call("GET", "/schemas/ids/999999999")).body.error_code, 40403);
    const bad = await call("POST", `/subjects/${subject()}/versions`, { schema: "{\"type\":\"nope\"}" });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.error_code, 42201);
  });
});
