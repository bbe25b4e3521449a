/**
 * `main audit` against the real local services: a seed goes through ingest, relay and processor
 * (in a PostgreSQL schema of its own, so the counts are this test's), rows are then taken out of
 * created_users or a published version never stored, the audit finds exactly those, and `--redrive`
 * brings them back through the relay and the processor without overwriting a newer version.
 */
import assert from "node:assert/strict";
import type { Admin } from "kafkajs";
import type { Client as CassandraClient } from "cassandra-driver";
import { startApiServer, type ApiServer } from "../../runtime/api/server";
import { USERS_TOPIC } from "../../runtime/contracts/names";
import type { AuditReport } from "../../runtime/audit/audit";
import { keyBucket } from "../../runtime/lib/key-bucket";
import { OUTBOX_WRITETIME_BASE } from "../../runtime/processor/write-time";
import {
  cassandra,
  expectedUsers,
  kafka,
  killAll,
  runWorker,
  scratchSchema,
  servicesEnv,
  uniq,
} from "./workers/harness";

const PAGES = 3;
const PER_PAGE = 100;

describe("audit: staged users against created_users, and the re-drive of what is missing", function () {
  this.timeout(600_000);
  let api: ApiServer;
  let cass: CassandraClient;
  let admin: Admin;
  let scratch: Awaited<ReturnType<typeof scratchSchema>>;
  let env: Record<string, string>;
  const seed = uniq("it-audit");
  const ids = [...expectedUsers(seed, PAGES, PER_PAGE).keys()];
  let t0: Date;

  before(async () => {
    servicesEnv();
    api = await startApiServer({ port: 0 });
    cass = cassandra();
    admin = kafka().admin();
    await admin.connect();
    scratch = await scratchSchema("it_audit");
    const group = `${seed}-processor`;
    // this group reads only what is published from now on (the shared topic holds other runs' history)
    const ends = await admin.fetchTopicOffsets(USERS_TOPIC);
    const partitions = ends.map((e) => ({ partition: e.partition, offset: e.high }));
    await admin.setOffsets({ groupId: group, topic: USERS_TOPIC, partitions });
    env = {
      PGOPTIONS: `-c search_path=${scratch.schema}`,
      API_BASE_URL: api.url,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(PER_PAGE),
      INGEST_BATCHES: String(PAGES),
      RELAY_POLL_MS: "100",
      PROCESSOR_GROUP_ID: group,
      PROCESSOR_IDLE_EXIT_MS: "1500",
    };
    t0 = new Date(Date.now() - 1000);
    await runWorker(["ingest", "--once"], env);
    await pipelineOnce();
  });

  after(async () => {
    await killAll();
    await admin?.disconnect();
    await cass?.shutdown();
    await scratch?.drop();
    await api?.close();
  });

  async function pipelineOnce(): Promise<void> {
    await runWorker(["relay", "--once"], env);
    await runWorker(["processor", "--once"], env);
  }

  async function audit(...args: string[]): Promise<AuditReport> {
    const r = await runWorker(["audit", ...args], env);
    return r.summary as AuditReport;
  }

  /** The newest outbox id of a user in this test's schema. */
  async function outboxId(id: string): Promise<bigint> {
    const r = await scratch.pg.query<{ id: string }>("SELECT max(id)::text AS id FROM outbox WHERE user_id = $1", [id]);
    return BigInt(r.rows[0].id);
  }

  const row = async (id: string) => {
    const cql = "SELECT first_name FROM spark_streams.created_users WHERE id = ?";
    return (await cass.execute(cql, [id], { prepare: true })).first();
  };
  /** An audit of every staged user stored and nothing else to say. */
  const clean = {
    scope: "",
    staged: ids.length,
    stored: ids.length,
    missing: 0,
    stale: 0,
    pending: 0,
    parked: 0,
    ids: [],
  };

  it("finds nothing missing after a clean run, by seed and by time range", async () => {
    const bySeed = await audit("--seed", seed);
    assert.deepEqual({ ...bySeed, scope: "" }, clean);
    const byTime = await audit("--since", t0.toISOString(), "--until", new Date(Date.now() + 1000).toISOString());
    assert.equal(byTime.staged, ids.length);
    assert.equal(byTime.stored, ids.length);
  });

  /** A new version of a user staged as ingest stages one: users changed, an outbox row of it. */
  async function stageVersion(id: string, firstName: string, published: boolean): Promise<void> {
    await scratch.pg.query("UPDATE users SET first_name = $2, updated_at = now() WHERE id = $1", [id, firstName]);
    await scratch.pg.query(
      `INSERT INTO outbox (user_id, bucket, payload, published_at)
       SELECT user_id, $2, jsonb_set(payload, '{first_name}', to_jsonb($3::text)), CASE WHEN $4 THEN now() END
         FROM outbox WHERE user_id = $1 ORDER BY id DESC LIMIT 1`,
      [id, keyBucket(id), firstName, published],
    );
  }

  it("finds rows deleted from created_users and a lost version, re-drives them, keeps a newer version", async () => {
    const deleted = ids.slice(0, 7);
    const lostVersion = ids[7];
    // a delete must be at or above the row's write time (the outbox id's, write-time.ts) to take it away
    for (const id of deleted) {
      const at = OUTBOX_WRITETIME_BASE + (await outboxId(id));
      const cql = "DELETE FROM spark_streams.created_users USING TIMESTAMP ? WHERE id = ?";
      await cass.execute(cql, [at.toString(), id], { prepare: true });
    }
    // a version published and never stored: Cassandra holds the one before it
    await stageVersion(lostVersion, "lost-version", true);

    const found = await audit("--seed", seed);
    assert.equal(found.missing, deleted.length);
    assert.equal(found.stale, 1);
    assert.equal(found.stored, ids.length - deleted.length - 1);
    assert.deepEqual(new Set(found.ids), new Set([...deleted, lostVersion]));

    const redriven = await audit("--seed", seed, "--redrive");
    assert.deepEqual(redriven.redrive, { written: deleted.length + 1, busy: 0 });
    const queued = await audit("--seed", seed);
    assert.equal(queued.pending, deleted.length + 1, "the re-driven users wait for the relay");

    // a newer version of a re-driven user is staged before the relay publishes the re-drive: both
    // reach Cassandra, the newer one must stay
    const raced = deleted[0];
    await stageVersion(raced, "newer", false);

    await pipelineOnce();
    const after = await audit("--seed", seed);
    assert.deepEqual({ ...after, scope: "" }, clean);
    assert.equal((await row(lostVersion))?.first_name, "lost-version", "the re-drive stored the lost version");
    assert.equal((await row(raced))?.first_name, "newer", "the re-drive did not overwrite the newer version");
    assert.ok(await row(deleted[1]), "a deleted row is back");
  });

  it("rejects a bad scope with a usage error (exit 2)", async () => {
    await assert.rejects(runWorker(["audit", "--since", "yesterday"], env), /exited 2/);
    await assert.rejects(runWorker(["audit"], env), /exited 2/);
  });
});
