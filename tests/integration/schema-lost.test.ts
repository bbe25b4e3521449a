/**
 * A lost schema is not a bad record (real Schema Registry): a record of our relay (outbox_id
 * header) whose schema id the registry no longer knows (hard-deleted: 404, error_code 40403), or
 * answers with another schema that cannot be read as UserCreated (an id reassigned), stops its
 * partition (SchemaLostError: retried, offset kept, health and metric) instead of being
 * dead-lettered. The same bytes without the header (another producer) are still dead-lettered.
 */
import assert from "node:assert/strict";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { USERS_VALUE_SUBJECT } from "../../runtime/contracts/names";
import { userCreatedAvsc } from "../../runtime/contracts/user-created";
import { generateUser } from "../../runtime/api/generate";
import { normalizeUser } from "../../runtime/ingest/normalize";
import { avroType, encodeFrame, FrameDecoder } from "../../runtime/lib/avro";
import { SchemaLostError } from "../../runtime/lib/errors";
import { registerUserCreated } from "../../runtime/lib/schema-registry";
import { decodeUser } from "../../runtime/processor/decode";
import { registryCall, Subjects, uniqueRecord, waitWritable } from "./../support/registry";
import { loadServicesEnv } from "../support/services";

describe("processor: a schema id the registry lost or reassigned stops the partition (real registry)", function () {
  this.timeout(120_000);
  let url: string;
  let registry: SchemaRegistry;
  const subjects = new Subjects("schemalost");
  const type = avroType(userCreatedAvsc());
  const n = normalizeUser(generateUser("schema-lost", 1, 0), Date.now());
  assert.ok(n.ok);
  const user = n.user;
  const key = Buffer.from(user.id);
  let lostId: number;
  let reassignedId: number;

  before(async () => {
    url = loadServicesEnv(["SCHEMA_REGISTRY_URL"]).SCHEMA_REGISTRY_URL;
    await waitWritable(url);
    registry = new SchemaRegistry({ host: url });
    await registerUserCreated(registry); // the subject is known: the registry is not merely empty
    // an id the registry does not know: what the ids of a lost _schemas are to a rebuilt registry
    // (Karapace keeps an id's schema even after a permanent delete, so an id never handed out)
    lostId = 2_000_000_000 + Math.floor(Math.random() * 1e6);
    const lookup = await registryCall(url, "GET", `/schemas/ids/${lostId}`);
    assert.equal(lookup.status, 404, `schema ${lostId} should be gone: ${JSON.stringify(lookup.body)}`);
    assert.equal(lookup.body.error_code, 40403);
    // an id whose schema is another one (what a rebuilt registry hands out again)
    const other = uniqueRecord([{ name: "n", type: "long" }]);
    reassignedId = (await registry.register({ type: SchemaType.AVRO, schema: other }, { subject: subjects.next() })).id;
  });

  after(async () => {
    await subjects.drop(url);
  });

  // grace 0: the wait for a registry still loading (20 s in the processor) is not what is tested
  const decoder = () => new FrameDecoder(new SchemaRegistry({ host: url }), type, USERS_VALUE_SUBJECT, 0);

  const cases = [
    ["no longer known (40403)", () => lostId],
    ["reassigned to another schema", () => reassignedId],
  ] as const;
  for (const [what, id] of cases) {
    it(`a relay record whose schema id is ${what}: SchemaLostError, not a dead letter`, async () => {
      const value = encodeFrame(id(), type, user);
      await assert.rejects(decodeUser(decoder(), value, key, true), (e: unknown) => {
        assert.ok(e instanceof SchemaLostError, `not a SchemaLostError: ${String(e)}`);
        assert.equal(e.schemaId, id());
        assert.match(e.message, /lost or reassigned schema id/);
        return true;
      });
    });

    it(`another producer's record whose schema id is ${what}: dead-lettered with the reason`, async () => {
      const d = await decodeUser(decoder(), encodeFrame(id(), type, user), key, false);
      assert.equal(d.ok, false);
      const reason = (d as { reason: string }).reason;
      assert.match(reason, /schema id \d+ is not in the registry|writer schema \d+ cannot be read/);
    });
  }

  it("a relay record of our registered schema decodes", async () => {
    const id = await registerUserCreated(registry);
    const d = await decodeUser(decoder(), encodeFrame(id, type, user), key, true);
    assert.ok(d.ok);
  });
});
