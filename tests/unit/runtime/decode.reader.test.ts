import assert from "node:assert/strict";
import avro from "avsc";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { userCreatedAvsc } from "../../../runtime/contracts/user-created";
import { avroType, encodeFrame, FrameDecoder } from "../../../runtime/lib/avro";
import { InfrastructureError } from "../../../runtime/lib/errors";
import { decodeUser, decodeUserLoaded, type Decoded } from "../../../runtime/processor/decode";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { generateUser } from "../../../runtime/api/generate";

/** A registry stand-in for the schema-by-id lookup only (the integration and fault suites use the real one). */
function registryOf(schemas: Map<number, avro.Type>, down: { now: boolean; empty?: boolean }): SchemaRegistry {
  return {
    getLatestSchemaId: async () => {
      if (down.empty)
        throw Object.assign(new Error("Subject not found (40401)"), { name: "ResponseError", status: 404 });
      return Math.max(...schemas.keys());
    },
    getSchema: async (id: number) => {
      if (down.now)
        throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8081"), { name: "ResponseError", status: 400 });
      const s = down.empty ? undefined : schemas.get(id);
      if (!s) throw Object.assign(new Error("Schema 99 not found (40403)"), { name: "ResponseError", status: 404 });
      return s;
    },
  } as unknown as SchemaRegistry;
}

/** A decode result with its user as a plain object (the hot path returns avsc's record instance). */
const plain = (d: Decoded): Decoded => (d.ok ? { ok: true, user: { ...d.user } } : d);

describe("processor: decoding with the reader schema", () => {
  const v1 = JSON.parse(userCreatedAvsc()) as { fields: object[] };
  const v2 = { ...v1, fields: [...v1.fields, { name: "nickname", type: ["null", "string"], default: null }] };
  const t1 = avroType(JSON.stringify(v1));
  const t2 = avroType(JSON.stringify(v2));
  const n = normalizeUser(generateUser("rd", 1, 0), 1_700_000_000_000);
  assert.ok(n.ok);
  const u = n.user;
  const down: { now: boolean; empty?: boolean } = { now: false };
  const decoder = new FrameDecoder(
    registryOf(
      new Map([
        [1, t1],
        [2, t2],
      ]),
      down,
    ),
    t1,
    "users_created-value",
    0,
  );

  it("a message written with a BACKWARD-compatible newer schema (a new field with a default) is stored, not dead-lettered", async () => {
    const d = await decodeUser(decoder, encodeFrame(2, t2, { ...u, nickname: "nick" }), Buffer.from(u.id));
    assert.deepEqual(plain(d), { ok: true, user: u });
  });

  it("bad bytes and unknown schema ids are reasons; a registry that cannot answer is an infrastructure error, never a reason", async () => {
    assert.match(
      ((await decodeUser(decoder, Buffer.from("not avro"), null)) as { reason: string }).reason,
      /^decode: not in the Confluent wire format/,
    );
    assert.match(
      ((await decodeUser(decoder, encodeFrame(99, t1, u), null)) as { reason: string }).reason,
      /^decode: schema id 99 is not in the registry/,
    );
    const truncated = encodeFrame(1, t1, u).subarray(0, 20);
    assert.match(((await decodeUser(decoder, truncated, null)) as { reason: string }).reason, /^decode: /);
    down.now = true;
    try {
      await assert.rejects(
        decodeUser(decoder, encodeFrame(3, t1, u), null),
        (e: unknown) => e instanceof InfrastructureError,
      );
      // a schema id fetched before the outage still decodes
      assert.deepEqual(plain(await decodeUser(decoder, encodeFrame(1, t1, u), Buffer.from(u.id))), {
        ok: true,
        user: u,
      });
    } finally {
      down.now = false;
    }
  });

  it("a registry that restarted empty (it does not know the subject) is an infrastructure error: good records wait, never dead-lettered", async () => {
    const fresh = new FrameDecoder(registryOf(new Map([[1, t1]]), down), t1, "users_created-value");
    down.empty = true;
    try {
      await assert.rejects(
        decodeUser(fresh, encodeFrame(1, t1, u), Buffer.from(u.id)),
        (e: unknown) => e instanceof InfrastructureError,
      );
    } finally {
      down.empty = false;
    }
    assert.deepEqual(
      plain(await decodeUser(fresh, encodeFrame(1, t1, u), Buffer.from(u.id))),
      { ok: true, user: u },
      "decoded once it is back",
    );
  });

  it("a registry still loading (it knows the subject at an older id) is an infrastructure error for a newer id, until the grace is out", async () => {
    const loaded = new Map([[1, t1]]);
    const loading = new FrameDecoder(registryOf(loaded, down), t1, "users_created-value", 200);
    // id 2 is above the subject's latest (1): waited for, never a reason within the grace
    await assert.rejects(
      decodeUser(loading, encodeFrame(2, t2, { ...u, nickname: null }), Buffer.from(u.id)),
      (e: unknown) => e instanceof InfrastructureError,
    );
    loaded.set(2, t2);
    assert.deepEqual(
      plain(await decodeUser(loading, encodeFrame(2, t2, { ...u, nickname: null }), Buffer.from(u.id))),
      { ok: true, user: u },
      "decoded once loaded",
    );
    // an id the registry never learns is a reason once the grace is out
    await assert.rejects(
      decodeUser(loading, encodeFrame(77, t1, u), null),
      (e: unknown) => e instanceof InfrastructureError,
    );
    await new Promise((r) => setTimeout(r, 250));
    assert.match(
      ((await decodeUser(loading, encodeFrame(77, t1, u), null)) as { reason: string }).reason,
      /^decode: schema id 77 is not in the registry/,
    );
  });

  it("a chunk's schemas are fetched once each (loadFor), then decoded without a wait; an id not loaded is infrastructure, never a reason", async () => {
    const schemas = new Map([
      [1, t1],
      [2, t2],
    ]);
    const reg = registryOf(schemas, { now: false });
    let fetches = 0;
    const getSchema = reg.getSchema.bind(reg);
    reg.getSchema = (async (id: number) => {
      fetches++;
      return getSchema(id);
    }) as typeof reg.getSchema;
    const chunkDecoder = new FrameDecoder(reg, t1, "users_created-value", 0);
    const frames = [
      encodeFrame(1, t1, u),
      encodeFrame(2, t2, { ...u, nickname: null }),
      encodeFrame(1, t1, u),
      Buffer.from("junk"),
      null,
    ];
    assert.throws(
      () => decodeUserLoaded(chunkDecoder, frames[0], null),
      (e: unknown) => e instanceof InfrastructureError,
    );
    await chunkDecoder.loadFor(frames);
    assert.equal(fetches, 2);
    const out = frames.map((f) => plain(decodeUserLoaded(chunkDecoder, f, Buffer.from(u.id))));
    assert.deepEqual(out.slice(0, 3), [
      { ok: true, user: u },
      { ok: true, user: u },
      { ok: true, user: u },
    ]);
    assert.match((out[3] as { reason: string }).reason, /^decode: not in the Confluent wire format/);
    assert.match((out[4] as { reason: string }).reason, /^decode: empty value/);
  });
});
