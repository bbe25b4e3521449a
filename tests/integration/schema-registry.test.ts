/**
 * The local Schema Registry (Karapace 5.0.3, run by scripts/services as `schema-registry`) has the
 * Confluent semantics the pipeline relies on, seen through the workers' own client
 * (@kafkajs/confluent-schema-registry) and the REST API: one global id per schema, BACKWARD
 * compatibility by default (409 on a breaking change), Confluent's error codes, and the project's
 * UserCreated schema registering and round-tripping through encode/decode.
 * Needs `scripts/services up` (zookeeper, kafka, schema-registry).
 */
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { USERS_VALUE_SUBJECT } from "../../runtime/contracts/names";
import { loadServicesEnv } from "../support/services";
import { registryCall, sampleRecord, Subjects, uniqueRecord, waitWritable } from "../support/registry";

const AVSC = readFileSync(join(__dirname, "../../runtime/contracts/user-created.avsc"), "utf8");

/** The client's ResponseError carries the HTTP status (not Confluent's error_code) and the message. */
type ClientError = Error & { status?: number };

describe("local Schema Registry (Karapace, Confluent REST API)", function () {
  this.timeout(60_000);
  let url: string;
  let registry: SchemaRegistry;
  const subjects = new Subjects("regtest");
  const call = (method: string, path: string, body?: unknown) => registryCall(url, method, path, body);

  before(async () => {
    url = loadServicesEnv(["SCHEMA_REGISTRY_URL"]).SCHEMA_REGISTRY_URL;
    registry = new SchemaRegistry({ host: url });
    await waitWritable(url);
  });

  after(async () => {
    if (url) await subjects.drop(url);
  });

  it("takes writes and checks BACKWARD compatibility by default (Confluent's default, the stacks' too)", async () => {
    assert.deepEqual((await call("GET", "/master_available")).body, { master_available: true });
    assert.deepEqual((await call("GET", "/config")).body, { compatibilityLevel: "BACKWARD" });
  });

  it("gives the same global id to the same schema, under any subject, every time", async () => {
    const v1 = uniqueRecord([{ name: "id", type: "string" }]);
    const [s1, s2] = [subjects.next(), subjects.next()];
    const a = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s1 });
    const again = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s1 });
    const b = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s2 });
    assert.ok(Number.isInteger(a.id) && a.id > 0);
    assert.equal(again.id, a.id, "registering the same schema again is idempotent");
    assert.equal(b.id, a.id, "ids are global: the same schema under another subject has the same id");
    assert.deepEqual((await call("GET", `/subjects/${s1}/versions`)).body, [1]);
    assert.deepEqual(
      (await call("GET", `/schemas/ids/${a.id}/versions`)).body,
      [
        { subject: s1, version: 1 },
        { subject: s2, version: 1 },
      ].sort((x, y) => x.subject.localeCompare(y.subject)),
    );
    // Spacing and key order are not part of a schema's identity (the registry normalises them).
    const parsed = JSON.parse(v1) as Record<string, unknown>;
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(parsed).reverse()), null, 2);
    assert.equal((await call("POST", `/subjects/${s1}/versions`, { schema: reordered })).body.id, a.id);
    assert.deepEqual((await call("GET", `/subjects/${s1}/versions`)).body, [1]);
    // A new schema gets a new id.
    const other = await registry.register(
      { type: SchemaType.AVRO, schema: uniqueRecord([{ name: "id", type: "string" }]) },
      { subject: subjects.next() },
    );
    assert.notEqual(other.id, a.id);
  });

  it("accepts a backward-compatible evolution (a new field with a default) and refuses a breaking one with 409", async () => {
    const name = `R${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    const v1 = uniqueRecord([{ name: "id", type: "string" }], name);
    const v2 = uniqueRecord(
      [
        { name: "id", type: "string" },
        { name: "n", type: "int", default: 0 },
      ],
      name,
    );
    const noDefault = uniqueRecord(
      [
        { name: "id", type: "string" },
        { name: "m", type: "int" },
      ],
      name,
    );
    const retyped = uniqueRecord([{ name: "id", type: "int" }], name);
    const s = subjects.next();

    const first = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject: s });
    const second = await registry.register({ type: SchemaType.AVRO, schema: v2 }, { subject: s });
    assert.notEqual(second.id, first.id);
    assert.equal(await registry.getLatestSchemaId(s), second.id);
    assert.deepEqual((await call("GET", `/subjects/${s}/versions`)).body, [1, 2]);

    // A reader with the new schema decodes what the old writer wrote: the default fills the field.
    const old = await registry.encode(first.id, { id: "u1" });
    assert.deepEqual(
      { ...(await registry.decode(old, { [SchemaType.AVRO]: { readerSchema: JSON.parse(v2) } })) },
      { id: "u1", n: 0 },
    );

    for (const breaking of [noDefault, retyped]) {
      const r = await call("POST", `/subjects/${s}/versions`, { schema: breaking });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error_code, 409);
      assert.match(String(r.body.message), /incompatible/i);
      assert.equal(
        (await call("POST", `/compatibility/subjects/${s}/versions/latest`, { schema: breaking })).body.is_compatible,
        false,
      );
      await assert.rejects(
        registry.register({ type: SchemaType.AVRO, schema: breaking }, { subject: s }),
        (err: ClientError) => {
          assert.equal(err.status, 409, `the client sees 409, got ${err.status}: ${err.message}`);
          return true;
        },
      );
    }
    assert.deepEqual(
      (await call("GET", `/subjects/${s}/versions`)).body,
      [1, 2],
      "nothing registered by the refused attempts",
    );

    // With the subject's level set to NONE, the same change is accepted: the 409 came from the level.
    assert.equal((await call("PUT", `/config/${s}`, { compatibility: "NONE" })).status, 200);
    assert.deepEqual((await call("GET", `/config/${s}`)).body, { compatibilityLevel: "NONE" });
    assert.equal((await call("POST", `/subjects/${s}/versions`, { schema: retyped })).status, 200);
  });

  it("answers with Confluent's error codes, which the client sees as HTTP statuses", async () => {
    const missing = subjects.next();
    const r40401 = await call("GET", `/subjects/${missing}/versions`);
    assert.deepEqual([r40401.status, r40401.body.error_code], [404, 40401]);
    await assert.rejects(registry.getLatestSchemaId(missing), (err: ClientError) => {
      assert.equal(err.status, 404);
      assert.match(err.message, /Subject .* not found/);
      return true;
    });

    const s = subjects.next();
    await registry.register(
      { type: SchemaType.AVRO, schema: uniqueRecord([{ name: "id", type: "string" }]) },
      { subject: s },
    );
    const r40402 = await call("GET", `/subjects/${s}/versions/99`);
    assert.deepEqual([r40402.status, r40402.body.error_code], [404, 40402]);
    const r42202 = await call("GET", `/subjects/${s}/versions/not-a-version`);
    assert.deepEqual([r42202.status, r42202.body.error_code], [422, 42202]);

    const r40403 = await call("GET", "/schemas/ids/2147483647");
    assert.deepEqual([r40403.status, r40403.body.error_code], [404, 40403]);
    // A message whose schema id the registry does not know: decode fails, naming the 404.
    const unknownId = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]), Buffer.from("x")]);
    await assert.rejects(new SchemaRegistry({ host: url }).decode(unknownId), (err: ClientError) => {
      assert.equal(err.status, 404);
      assert.match(err.message, /Schema not found/);
      return true;
    });

    for (const schema of ['{"type":"nope"}', "not json", '{"type":"record","name":"X","fields":[{"name":"a"}]}']) {
      const bad = await call("POST", `/subjects/${subjects.next()}/versions`, { schema });
      assert.deepEqual([bad.status, bad.body.error_code], [422, 42201], `${schema}: ${JSON.stringify(bad.body)}`);
    }
    const badLevel = await call("PUT", `/config/${s}`, { compatibility: "SIDEWAYS" });
    assert.deepEqual([badLevel.status, badLevel.body.error_code], [422, 42203]);
  });

  it("registers the project's UserCreated schema, and a record round-trips through encode/decode", async () => {
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: AVSC }, { subject: USERS_VALUE_SUBJECT });
    assert.ok(Number.isInteger(id) && id > 0);
    assert.equal(
      (await registry.register({ type: SchemaType.AVRO, schema: AVSC }, { subject: subjects.next() })).id,
      id,
    );
    assert.equal(
      await registry.getRegistryIdBySchema(USERS_VALUE_SUBJECT, { type: SchemaType.AVRO, schema: AVSC }),
      id,
    );

    const record = sampleRecord(JSON.parse(AVSC));
    const bytes = await registry.encode(id, record);
    assert.equal(bytes[0], 0, "Confluent wire format: magic byte 0");
    assert.equal(bytes.readInt32BE(1), id, "Confluent wire format: schema id");
    assert.deepEqual({ ...(await registry.decode(bytes)) }, record);
    // A fresh client (empty cache) fetches the schema by id from the registry, as the processor does.
    assert.deepEqual({ ...(await new SchemaRegistry({ host: url }).decode(bytes)) }, record);

    // The registry keeps the schema as a normalised text (keys sorted, whitespace dropped): the same
    // Avro schema as the file, its fields in the same order.
    const stored = JSON.parse(String((await call("GET", `/schemas/ids/${id}`)).body.schema)) as {
      name: string;
      namespace: string;
      fields: { name: string }[];
    };
    const file = JSON.parse(AVSC) as typeof stored;
    assert.equal(`${stored.namespace}.${stored.name}`, `${file.namespace}.${file.name}`);
    assert.deepEqual(
      stored.fields.map((f) => f.name),
      file.fields.map((f) => f.name),
    );
  });
});
