/**
 * The workers against the real local services (scripts/services up): offline API → ingest →
 * PostgreSQL → relay → Kafka (+ Schema Registry) → processor → Cassandra.
 * Each test uses its own seed and looks only at its own ids; workers run as child processes
 * (`tsx runtime/main.ts ...`), killed after each test if still running.
 */
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Admin, Kafka, Producer } from "kafkajs";
import type { Pool } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { startApiServer, type ApiServer } from "../../../runtime/api/server";
import { generatePage, malformedDraw } from "../../../runtime/api/generate";
import { DLQ_TOPIC, USERS_TOPIC, USERS_VALUE_SUBJECT } from "../../../runtime/contracts/names";
import { userCreatedAvsc, type UserCreated } from "../../../runtime/contracts/user-created";
import { keyBucket } from "../../../runtime/lib/key-bucket";
import type { DlqEnvelope } from "../../../runtime/processor/dlq";
import {
  cassandra,
  cassandraUsers,
  expectedUsers,
  kafka,
  killAll,
  pgPool,
  readRange,
  runWorker,
  servicesEnv,
  spawnWorker,
  topicEnds,
  uniq,
  waitFor,
  type CassandraUser,
} from "./harness";

const GROUP = "it-workers-processor";

describe("workers against the real services", function () {
  this.timeout(600_000);
  let api: ApiServer;
  let pg: Pool;
  let cass: CassandraClient;
  let k: Kafka;
  let admin: Admin;
  let base: Record<string, string>;

  before(async () => {
    servicesEnv();
    api = await startApiServer({ port: 0 });
    pg = pgPool();
    cass = cassandra();
    k = kafka();
    admin = k.admin();
    await admin.connect();
    base = {
      API_BASE_URL: api.url,
      INGEST_RETRY_BASE_MS: "50",
      INGEST_RETRY_MAX_MS: "1000",
      RELAY_POLL_MS: "100",
      PROCESSOR_GROUP_ID: GROUP,
      PROCESSOR_IDLE_EXIT_MS: "1500",
    };
    // topics and tables exist before the first range read: one short relay and processor run
    await runWorker(["relay", "--once"], base);
    // The shared topic may hold other runs' history (the fault suite, older registries whose schema
    // ids mean other schemas now): this group starts at the topic's end; each test reads its own range.
    // explicit end offsets: kafkajs' resetOffsets(latest) commits -1, which a consumer subscribed
    // fromBeginning reads as "from the start" (the whole shared topic: the hook timed out)
    const ends = await admin.fetchTopicOffsets(USERS_TOPIC);
    await admin.setOffsets({
      groupId: GROUP,
      topic: USERS_TOPIC,
      partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
    });
    await runWorker(["processor", "--once"], base);
  });

  afterEach(async () => {
    await killAll();
    api.setFaults({ errorRate: 0, failNext: 0, latencyMs: 0, malformedRate: 0, errorStatuses: [429, 500] });
  });

  after(async () => {
    await killAll();
    await admin?.disconnect();
    await cass?.shutdown();
    await pg?.end();
    await api?.close();
  });

  /** PostgreSQL rows of a seed's users: fetched_at by id, and the outbox state. */
  async function pgState(ids: string[]) {
    const users = await pg.query<{ id: string; fetched_at: Date }>(
      "SELECT id::text, fetched_at FROM users WHERE id = ANY($1::uuid[])",
      [ids],
    );
    const ob = await pg.query<{ n: string; published: string; keys: string }>(
      "SELECT count(*)::text AS n, count(published_at)::text AS published, count(DISTINCT user_id)::text AS keys FROM outbox WHERE user_id = ANY($1::uuid[])",
      [ids],
    );
    return {
      fetchedAt: new Map(users.rows.map((r) => [r.id, r.fetched_at.getTime()])),
      outbox: Number(ob.rows[0].n),
      published: Number(ob.rows[0].published),
      keys: Number(ob.rows[0].keys),
    };
  }

  function assertSameUsers(
    expected: Map<string, UserCreated>,
    fetchedAt: Map<string, number>,
    got: Map<string, CassandraUser>,
  ) {
    assert.equal(got.size, expected.size, "every id once in Cassandra");
    let checked = 0;
    for (const [id, e] of expected) {
      const row = got.get(id);
      assert.ok(row, `user ${id} missing in Cassandra`);
      assert.deepEqual(row, { ...e, fetched_at: fetchedAt.get(id) }, `user ${id}`);
      checked++;
    }
    assert.equal(checked, expected.size);
  }

  let seedA = "";
  let idsA: string[] = [];
  let snapshotA = new Map<string, CassandraUser>();
  let beforeA = new Map<number, string>();

  it("N = 10,000 users from the offline API land in Cassandra exactly once, every field equal to the source", async () => {
    seedA = uniq("it-a");
    const before = await topicEnds(admin);
    beforeA = before;
    const t0 = Date.now();
    // (a 60 s HTTP time-out: 5,000 users a page from the test's own API, on a loaded 2-core host,
    // took over the default 15 s twice, and a retry here is the host's, not the pipeline's)
    const ing = await runWorker(["ingest", "--once"], {
      ...base,
      INGEST_SEED: seedA,
      INGEST_BATCH_SIZE: "5000",
      INGEST_BATCHES: "2",
      INGEST_HTTP_TIMEOUT_MS: "60000",
    });
    const t1 = Date.now();
    assert.deepEqual(
      { ...(ing.summary as object), seconds: 0 },
      {
        seed: seedA,
        batches: 2,
        fetched: 10_000,
        staged: 10_000,
        outboxed: 10_000,
        rejected: 0,
        failedPages: 0,
        retries: 0,
        nextPage: 3,
        seconds: 0,
        interrupted: false,
      },
    );
    await runWorker(["relay", "--once"], base);
    const t2 = Date.now();
    await runWorker(["processor", "--once"], base);
    const t3 = Date.now();
    console.log(
      `      ingest ${t1 - t0} ms, relay ${t2 - t1} ms, processor ${t3 - t2} ms (10,000 users, incl. process start)`,
    );

    const expected = expectedUsers(seedA, 2, 5000);
    assert.equal(expected.size, 10_000);
    idsA = [...expected.keys()];
    const st = await pgState(idsA);
    assert.equal(st.fetchedAt.size, 10_000);
    assert.deepEqual([st.outbox, st.published, st.keys], [10_000, 10_000, 10_000]);
    snapshotA = await cassandraUsers(cass, idsA);
    assertSameUsers(expected, st.fetchedAt, snapshotA);

    // on the topic: each id exactly once, keyed by id, Avro with the registered schema
    const msgs = (await readRange(k, USERS_TOPIC, before, await topicEnds(admin))).filter(
      (m) => m.key && expected.has(m.key),
    );
    assert.equal(msgs.length, 10_000);
    assert.equal(new Set(msgs.map((m) => m.key)).size, 10_000);
    const registry = new SchemaRegistry({ host: servicesEnv().SCHEMA_REGISTRY_URL });
    const decoded = (await registry.decode(msgs[0].value as Buffer)) as UserCreated;
    assert.equal(decoded.id, msgs[0].key);
    // our schema's id under the subject (not the latest version: a compatible evolution may follow it)
    const ours = await registry.getRegistryIdBySchema(USERS_VALUE_SUBJECT, {
      type: SchemaType.AVRO,
      schema: userCreatedAvsc(),
    });
    assert.equal((msgs[0].value as Buffer).readUInt32BE(1), ours);
  });

  it("replaying the topic from before the first test and re-running the relay over published rows change nothing in Cassandra", async () => {
    assert.ok(idsA.length === 10_000, "needs the first test");
    // the relay again over rows already published
    await pg.query("UPDATE outbox SET published_at = NULL WHERE user_id = ANY($1::uuid[])", [idsA]);
    await runWorker(["relay", "--once"], base);
    assert.equal((await pgState(idsA)).published, 10_000, "published again");
    await runWorker(["processor", "--once"], base);
    // a fresh group from offset 0: the whole topic again. First the rows are changed in Cassandra
    // behind the pipeline's back: only a processor that really re-reads and re-writes them
    // restores them (an upsert-based processor passes the mere "nothing changed" check trivially)
    const tampered = idsA.slice(0, 500);
    await Promise.all(
      tampered.map((id) =>
        cass.execute("UPDATE spark_streams.created_users SET email = 'tampered@example.com' WHERE id = ?", [id], {
          prepare: true,
        }),
      ),
    );
    // (from where the first test began, not offset 0: the shared topic holds every run's history)
    const group = uniq("it-replay");
    await admin.setOffsets({
      groupId: group,
      topic: USERS_TOPIC,
      partitions: [...beforeA].map(([partition, offset]) => ({ partition, offset })),
    });
    const replay = await runWorker(["processor", "--once"], { ...base, PROCESSOR_GROUP_ID: group });
    assert.ok(
      (replay.summary as { stored: number }).stored >= 20_000,
      "the replay read the range again (10,000 users, twice)",
    );
    const after = await cassandraUsers(cass, idsA);
    assert.equal(after.size, 10_000);
    assert.deepEqual(after, snapshotA);
  });

  it("malformed API records go to rejected_records with a reason, a malformed Kafka message to the DLQ; the rest arrives", async () => {
    const seed = uniq("it-c");
    const perPage = 2000;
    api.setFaults({ malformedRate: 0.05 });
    const ing = await runWorker(["ingest", "--once"], {
      ...base,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: String(perPage),
      INGEST_BATCHES: "1",
    });
    let expectedBad = 0;
    for (let i = 0; i < perPage; i++) if (malformedDraw(seed, 1, i) < 0.05) expectedBad++;
    const s = ing.summary as { fetched: number; staged: number; rejected: number };
    assert.deepEqual([s.fetched, s.staged, s.rejected], [perPage, perPage - expectedBad, expectedBad]);
    const rej = await pg.query<{ idx: number; reason: string; raw: unknown }>(
      "SELECT idx, reason, raw FROM rejected_records WHERE seed = $1 AND page = 1 ORDER BY idx",
      [seed],
    );
    assert.equal(rej.rowCount, expectedBad);
    const page = generatePage(seed, 1, perPage, 0.05);
    for (const r of rej.rows) {
      assert.match(r.reason, /^(login\.uuid|email|dob\.date|name): /);
      assert.deepEqual(r.raw, page.results[r.idx]);
    }

    // a malformed message on the topic (not Avro), one that violates the schema, then good ones
    const registry = new SchemaRegistry({ host: servicesEnv().SCHEMA_REGISTRY_URL });
    const { id: schemaId } = await registry.register(
      { type: SchemaType.AVRO, schema: userCreatedAvsc() },
      { subject: USERS_VALUE_SUBJECT },
    );
    const good = [...expectedUsers(uniq("it-c-kafka"), 1, 3).values()].map((u) => ({
      ...u,
      fetched_at: 1_700_000_000_000,
    }));
    const badId = { ...good[0], id: "not-a-uuid" };
    const garbage = Buffer.from("this is not avro \u0000\u0001\u0002");
    const beforeDlq = await topicEnds(admin, DLQ_TOPIC);
    const producer: Producer = k.producer();
    await producer.connect();
    await producer.send({
      topic: USERS_TOPIC,
      acks: -1,
      messages: [
        { key: good[0].id, value: garbage },
        { key: good[0].id, value: await registry.encode(schemaId, badId) },
        ...(await Promise.all(good.map(async (u) => ({ key: u.id, value: await registry.encode(schemaId, u) })))),
      ],
    });
    await producer.disconnect();
    await runWorker(["relay", "--once"], base);
    await runWorker(["processor", "--once"], base);

    const expected = expectedUsers(seed, 1, perPage, 0.05);
    assert.equal(expected.size, perPage - expectedBad);
    const st = await pgState([...expected.keys()]);
    assertSameUsers(expected, st.fetchedAt, await cassandraUsers(cass, [...expected.keys()]));
    const kafkaGood = await cassandraUsers(
      cass,
      good.map((u) => u.id),
    );
    assert.equal(kafkaGood.size, 3);
    assert.deepEqual(kafkaGood.get(good[2].id), good[2]);

    // (another consumer group on the same services would dead-letter them too: count by source)
    const dlq = (await readRange(k, DLQ_TOPIC, beforeDlq, await topicEnds(admin, DLQ_TOPIC))).filter(
      (m) => m.key === good[0].id,
    );
    const envs = [
      ...new Map(
        dlq
          .map((m) => JSON.parse((m.value as Buffer).toString()) as DlqEnvelope)
          .map((e) => [`${e.source.partition}/${e.source.offset}`, e]),
      ).values(),
    ];
    assert.equal(envs.length, 2, "both bad messages dead-lettered");
    const byValue = new Map(envs.map((e) => [e.value_base64, e]));
    const g = byValue.get(garbage.toString("base64"));
    assert.ok(g, "the garbage bytes are kept");
    assert.match(g.reason, /^decode: /);
    assert.equal(g.source.topic, USERS_TOPIC);
    const inv = envs.find((e) => e !== g);
    assert.ok(inv);
    assert.match(inv.reason, /^invalid: id: id must be a UUID/);
    assert.ok(
      dlq.every((m) => m.headers.error_reason && m.headers.source_topic === USERS_TOPIC && m.headers.source_offset),
    );
  });

  it("ingest SIGKILLed and relay SIGTERMed mid-stream, processor SIGKILLed and SIGTERMed, all restarted: nothing lost, nothing duplicated", async () => {
    const seed = uniq("it-d");
    const perPage = 2000;
    const pages = 10;
    const before = await topicEnds(admin);
    api.setFaults({ latencyMs: 400 });
    const ingestEnv = { ...base, INGEST_SEED: seed, INGEST_BATCH_SIZE: String(perPage), INGEST_BATCHES: String(pages) };
    const slowRelay = { ...base, RELAY_BATCH_SIZE: "200", RELAY_POLL_MS: "50" };
    const slowProc = { ...base, PROCESSOR_CHUNK_SIZE: "100", PROCESSOR_CONCURRENCY: "8" };
    const cursor = async () =>
      Number(
        (await pg.query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [seed])).rows[0]
          ?.next_page ?? 1,
      );

    const ingest1 = await spawnWorker(["ingest", "--once"], ingestEnv);
    const relay1 = await spawnWorker(["relay"], slowRelay);
    const proc1 = await spawnWorker(["processor"], slowProc);

    // ingest: SIGKILL after a few pages, in the middle of fetching the next
    await waitFor("ingest at page 4", async () => (await cursor()) >= 4);
    ingest1.proc.kill("SIGKILL");
    assert.equal((await ingest1.exited).signal, "SIGKILL");
    const pagesDone = (await cursor()) - 1;
    assert.ok(pagesDone < pages, "killed mid-stream");

    // relay: SIGTERM while it publishes; it finishes its round and exits 0
    await waitFor(
      "relay publishing",
      async () => (await relay1.metric("pipeline_records_out_total", 'worker="relay"')) >= 1000,
    );
    relay1.proc.kill("SIGTERM");
    assert.equal((await relay1.exited).code, 0, relay1.output().slice(-2000));

    // processor: SIGKILL while it stores
    await waitFor(
      "processor storing",
      async () => (await proc1.metric("pipeline_records_out_total", 'worker="processor"')) >= 500,
    );
    proc1.proc.kill("SIGKILL");
    await proc1.exited;

    // restart all: ingest continues from its cursor
    const ingest2 = await spawnWorker(["ingest", "--once"], {
      ...ingestEnv,
      INGEST_BATCHES: String(pages - pagesDone),
    });
    const relay2 = await spawnWorker(["relay"], slowRelay);
    const proc2 = await spawnWorker(["processor"], slowProc);
    // processor: SIGTERM mid-stream this time, then a last one to the end
    await waitFor(
      "second processor storing",
      async () => (await proc2.metric("pipeline_records_out_total", 'worker="processor"')) >= 300,
    );
    proc2.proc.kill("SIGTERM");
    assert.equal((await proc2.exited).code, 0, proc2.output().slice(-2000));
    assert.equal((await ingest2.exited).code, 0, ingest2.output().slice(-2000));
    assert.equal(await cursor(), pages + 1);
    api.setFaults({ latencyMs: 0 });

    const expected = expectedUsers(seed, pages, perPage);
    const ids = [...expected.keys()];
    // a relay that stops publishing: its own account of why is the failure's message
    await waitFor("outbox drained", async () => (await pgState(ids)).published === ids.length, 180_000, 250).catch(
      (e: Error) => {
        throw new Error(
          `${e.message}\nrelay 2:\n${relay2.output().slice(-3000)}\ningest 2:\n${ingest2.output().slice(-1500)}`,
        );
      },
    );
    relay2.proc.kill("SIGTERM");
    assert.equal((await relay2.exited).code, 0);
    await runWorker(["processor", "--once"], base);

    const st = await pgState(ids);
    assert.deepEqual(
      [st.fetchedAt.size, st.outbox, st.published, st.keys],
      [ids.length, ids.length, ids.length, ids.length],
      "one outbox row per user",
    );
    assertSameUsers(expected, st.fetchedAt, await cassandraUsers(cass, ids));
    // relays were stopped gracefully: each id once on the topic
    const msgs = (await readRange(k, USERS_TOPIC, before, await topicEnds(admin))).filter(
      (m) => m.key && expected.has(m.key),
    );
    assert.equal(msgs.length, ids.length);
    assert.equal(new Set(msgs.map((m) => m.key)).size, ids.length);
  });

  // Red before 2026-11-26 (issue 11): a key's versions on the topic as 1, 5, 2, 3, 4. The claim's
  // `SELECT id::text ... ORDER BY id` sorted by the text output column, so outbox id 1201 came
  // before 301: 1,500 rows in a fresh schema cross a digit boundary, as a real outbox does at 10^n.
  it("two relays at once, both publishing, neither duplicate nor reorder the versions of a key", async () => {
    // a PostgreSQL schema of their own (search_path): no other relay on these services takes a share,
    // so the two must split the rows between them exactly
    const schema = `it_two_${uniq("r").replace(/[^a-z0-9]/g, "_")}`;
    await pg.query(`CREATE SCHEMA ${schema}`);
    const env = {
      ...base,
      PGOPTIONS: `-c search_path=${schema}`,
      RELAY_BATCH_SIZE: "10",
      RELAY_MAX_BUCKETS: "4",
      RELAY_POLL_MS: "20",
    };
    try {
      const keys = Array.from({ length: 300 }, () => crypto.randomUUID());
      const versions = 5;
      const base0 = [...expectedUsers(uniq("it-f"), 1, 1).values()][0];
      const rows: { id: string; bucket: number; payload: string }[] = [];
      for (let v = 1; v <= versions; v++) {
        for (const id of keys)
          rows.push({
            id,
            bucket: keyBucket(id),
            payload: JSON.stringify({ ...base0, id, email: `v${v}@example.com`, fetched_at: v }),
          });
      }
      // both relays up and polling (they create the tables in the schema) before any row exists
      const r1 = await spawnWorker(["relay"], env);
      const r2 = await spawnWorker(["relay"], env);
      await waitFor(
        "both relays started",
        async () => /relay started/.test(r1.output()) && /relay started/.test(r2.output()),
        60_000,
      );
      const before = await topicEnds(admin);
      await pg.query(
        `INSERT INTO ${schema}.outbox (user_id, bucket, payload)
         SELECT u, b, p FROM unnest($1::uuid[], $2::smallint[], $3::jsonb[]) WITH ORDINALITY AS t(u, b, p, n) ORDER BY n`,
        [rows.map((r) => r.id), rows.map((r) => r.bucket), rows.map((r) => r.payload)],
      );
      await waitFor(
        "the schema's outbox drained",
        async () => {
          const n = await pg.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${schema}.outbox WHERE published_at IS NULL`,
          );
          return n.rows[0].n === 0;
        },
        120_000,
        100,
      );
      const p1 = await r1.metric("pipeline_records_out_total", 'worker="relay"');
      const p2 = await r2.metric("pipeline_records_out_total", 'worker="relay"');
      r1.proc.kill("SIGTERM");
      r2.proc.kill("SIGTERM");
      assert.equal((await r1.exited).code, 0);
      assert.equal((await r2.exited).code, 0);
      console.log(`      relay 1 published ${p1}, relay 2 published ${p2} of ${rows.length}`);
      assert.ok(p1 > 0 && p2 > 0, "both relays took part");
      assert.equal(p1 + p2, rows.length, "each row published by exactly one of them");

      const registry = new SchemaRegistry({ host: servicesEnv().SCHEMA_REGISTRY_URL });
      const mine = new Set<string>(keys);
      const msgs = (await readRange(k, USERS_TOPIC, before, await topicEnds(admin))).filter(
        (m) => m.key && mine.has(m.key),
      );
      assert.equal(msgs.length, keys.length * versions, "no duplicates, nothing lost");
      const seen = new Map<string, number[]>();
      msgs.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
      for (const m of msgs) {
        const u = (await registry.decode(m.value as Buffer)) as UserCreated;
        seen.set(u.id, [...(seen.get(u.id) ?? []), u.fetched_at]);
      }
      for (const id of keys) assert.deepEqual(seen.get(id), [1, 2, 3, 4, 5], `versions of ${id} in order`);
      await runWorker(["processor", "--once"], base);
      const stored = await cassandraUsers(cass, keys);
      assert.ok(
        [...stored.values()].every((u) => u.email === "v5@example.com"),
        "the last version wins in Cassandra",
      );
    } finally {
      await pg.query(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  it("last write wins by outbox id, not by arrival: an older version that reaches Cassandra later does not overwrite a newer one", async () => {
    // what an evicted processor still writing its chunk, a redelivery, or a relay that resent an old
    // round does: v3 (outbox id 30) is stored, then v1 (10) and v2 (20) arrive, in one chunk and later
    const registry = new SchemaRegistry({ host: servicesEnv().SCHEMA_REGISTRY_URL });
    const { id: schemaId } = await registry.register(
      { type: SchemaType.AVRO, schema: userCreatedAvsc() },
      { subject: USERS_VALUE_SUBJECT },
    );
    const [u, w] = [...expectedUsers(uniq("it-lww"), 1, 2).values()];
    const v = (x: typeof u, n: number) => ({ ...x, email: `v${n}@example.com`, fetched_at: 1_700_000_000_000 + n });
    const send = async (msgs: { user: typeof u; outboxId?: string }[]) => {
      const producer: Producer = k.producer();
      await producer.connect();
      await producer.send({
        topic: USERS_TOPIC,
        acks: -1,
        messages: await Promise.all(
          msgs.map(async (m) => ({
            key: m.user.id,
            value: await registry.encode(schemaId, m.user),
            headers: m.outboxId ? { outbox_id: m.outboxId } : {},
          })),
        ),
      });
      await producer.disconnect();
    };
    await send([
      { user: v(u, 3), outboxId: "30" },
      { user: v(w, 2), outboxId: "1000000000000020" },
    ]);
    await runWorker(["processor", "--once"], base);
    // later, in one chunk: older versions; one without the header (not from the relay: the driver's clock)
    await send([
      { user: v(u, 1), outboxId: "10" },
      { user: v(u, 2), outboxId: "20" },
      { user: v(w, 1), outboxId: "1000000000000010" },
      { user: v(w, 9) },
    ]);
    await runWorker(["processor", "--once"], base);
    const got = await cassandraUsers(cass, [u.id, w.id]);
    assert.equal(got.get(u.id)?.email, "v3@example.com", "the newest outbox version stays");
    assert.equal(got.get(w.id)?.email, "v2@example.com", "a write without outbox id never beats a relayed one");
    const wt = await cass.execute(
      `SELECT id, WRITETIME(email) AS wt FROM spark_streams.created_users WHERE id IN ?`,
      [[u.id, w.id]],
      { prepare: true },
    );
    const byId = new Map(wt.rows.map((r) => [r.id.toString(), r.wt.toString()]));
    assert.equal(byId.get(u.id), "10000000000000030", "WRITETIME = 10^16 + outbox id");
    assert.equal(byId.get(w.id), "11000000000000020");
  });

  it("a wrongly shaped page, a page over the size cap and a storm longer than the retry budget: each recorded with its reason in ingest_page_failures, ingest goes on", async () => {
    const seed = uniq("it-pages");
    // in front of the offline API: page 2 wrongly shaped, page 3 over the cap, page 4 a 500 storm
    // longer than the retry budget (12 requests; 3 per round), pages 1 and 5 as they are
    let storm = 12;
    const proxy = http.createServer((req, res) => {
      const page = Number(new URL(req.url ?? "/", "http://x").searchParams.get("page"));
      const reply = (status: number, body: string) =>
        void res.writeHead(status, { "content-type": "application/json" }).end(body);
      if (page === 2) return reply(200, JSON.stringify({ results: "not a list", info: { seed, results: 1, page } }));
      if (page === 3)
        return reply(
          200,
          JSON.stringify({ results: [{ pad: "x".repeat(300_000) }], info: { seed, results: 1, page } }),
        );
      if (page === 4 && storm-- > 0) return reply(500, '{"error":"storm"}');
      void fetch(`${api.url}${req.url}`).then(async (r) => reply(r.status, await r.text()));
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const r = await runWorker(
        ["ingest", "--once"],
        {
          ...base,
          API_BASE_URL: url,
          INGEST_SEED: seed,
          INGEST_BATCH_SIZE: "50",
          INGEST_BATCHES: "5",
          INGEST_RETRIES: "2",
          INGEST_RETRY_BASE_MS: "10",
          INGEST_RETRY_MAX_MS: "50",
          INGEST_MAX_RESPONSE_BYTES: "100000",
        },
        120_000,
      );
      const s = r.summary as { batches: number; staged: number; failedPages: number; nextPage: number };
      assert.deepEqual([s.batches, s.staged, s.failedPages, s.nextPage], [5, 150, 2, 6], JSON.stringify(s));
      const f = await pg.query<{
        page: number;
        reason: string;
        attempts: number;
        skipped: boolean;
        recovered: boolean;
      }>(
        "SELECT page, reason, attempts, skipped, recovered_at IS NOT NULL AS recovered FROM ingest_page_failures WHERE seed = $1 ORDER BY page",
        [seed],
      );
      assert.deepEqual(
        f.rows.map((x) => [x.page, x.skipped, x.recovered]),
        [
          [2, true, false],
          [3, true, false],
          [4, false, true],
        ],
      );
      assert.match(f.rows[0].reason, /not a randomuser page: results: /);
      assert.match(f.rows[1].reason, /larger than the cap of 100000 bytes \(INGEST_MAX_RESPONSE_BYTES\)/);
      assert.match(f.rows[2].reason, /HTTP 500/);
      assert.equal(f.rows[2].attempts, 12, "4 rounds of 3 attempts recorded");
      const n = await pg.query("SELECT count(*)::int AS n FROM users WHERE id = ANY($1::uuid[])", [
        [...expectedUsers(seed, 1, 50).keys()],
      ]);
      assert.equal(n.rows[0].n, 50);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });

  it("the API answering 429 and 500 for a while: ingest backs off and completes", async () => {
    const seed = uniq("it-e");
    api.setFaults({ errorRate: 1 });
    const stats0 = api.stats();
    // the storm lasts 1.5 s from the first refused request (not from the spawn: a worker's start
    // on a loaded 2-core host can take longer than a fixed storm, which then nobody saw)
    const errors = () =>
      Object.entries(api.stats())
        .filter(([st]) => st !== "200")
        .reduce((n, [, v]) => n + v, 0);
    const e0 = errors();
    let t0 = 0;
    const ending = waitFor("the first refused request", async () => errors() > e0, 120_000, 20).then(async () => {
      t0 = Date.now();
      await new Promise((r) => setTimeout(r, 1500));
      api.setFaults({ errorRate: 0 });
    });
    const r = await runWorker(["ingest", "--once"], {
      ...base,
      INGEST_SEED: seed,
      INGEST_BATCH_SIZE: "1000",
      INGEST_BATCHES: "3",
      INGEST_RETRY_BASE_MS: "100",
      INGEST_RETRY_MAX_MS: "800",
      INGEST_RETRIES: "30",
    });
    await ending;
    const s = r.summary as { fetched: number; staged: number; retries: number; batches: number };
    assert.ok(Date.now() - t0 >= 1500);
    assert.deepEqual([s.batches, s.fetched, s.staged], [3, 3000, 3000]);
    assert.ok(s.retries >= 2, `retries ${s.retries}`);
    const stats = api.stats();
    assert.ok((stats[429] ?? 0) > (stats0[429] ?? 0) && (stats[500] ?? 0) > (stats0[500] ?? 0), JSON.stringify(stats));
    assert.match(r.output, /fetch failed, retrying/);
    const n = await pg.query("SELECT count(*)::int AS n FROM users WHERE id = ANY($1::uuid[])", [
      [...expectedUsers(seed, 3, 1000).keys()],
    ]);
    assert.equal(n.rows[0].n, 3000);
  });
});
