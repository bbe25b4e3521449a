/**
 * The limits the workers are compared with: the bare client of each worker's sink, on the same
 * rows, in separate places (PostgreSQL schema bench_ref_<id>, Kafka topic bench_ref_<id>.<run>,
 * Cassandra table spark_streams.bench_ref_<id>_created_users: the pipeline's role may create tables
 * in its keyspace, not keyspaces) so the pipeline's tables stay clean; all removed by
 * cleanupReferences().
 */
import { CompressionTypes, Partitioners, type Kafka, type KafkaMessage } from "kafkajs";
import type { Pool } from "pg";
import { concurrent, type Client as CassandraClient } from "cassandra-driver";
import { KEYSPACE, USERS_TABLE } from "../runtime/contracts/names";
import type { UserCreated } from "../runtime/contracts/user-created";
import { keyBucket } from "../runtime/lib/key-bucket";
import { USERS_TABLE_CQL } from "../runtime/lib/cassandra";
import { userWrite } from "../runtime/processor/cassandra-writer";
import { OUTBOX_WRITETIME_BASE, writeTimeOf } from "../runtime/processor/write-time";
import { encodeFrame, type AvroType } from "../runtime/lib/avro";
import { recorder, type RunFigures } from "./stats";

/** One name per bench process: two benches on the shared services must not drop each other's tables. */
export const REF = `bench_ref_${process.pid}_${Date.now().toString(36)}`;

/** The Cassandra reference's table, beside the processor's in its keyspace. */
const REF_TABLE = `${KEYSPACE}.${REF}_${USERS_TABLE}`;

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * PostgreSQL (the pool's search_path must find the workers' users and outbox tables, to copy
 * their definitions): what ingest must write per record (the user row and its outbox row), as plain
 * multi-row INSERT ... VALUES of `batch` rows, one transaction per batch, one connection:
 * the same shape of work as ingest (one writer, one transaction per page).
 */
export interface PgLimit {
  /** INSERT ... VALUES ($1..$14), (...), ... */
  values: RunFigures;
  /** INSERT ... SELECT * FROM unnest($1::uuid[], ...): one array parameter per column */
  unnest: RunFigures;
}

async function freshRefTables(pool: Pool): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${REF}`);
  await pool.query(`DROP TABLE IF EXISTS ${REF}.users, ${REF}.outbox`);
  await pool.query(`CREATE TABLE ${REF}.users (LIKE users INCLUDING ALL)`);
  await pool.query(`CREATE TABLE ${REF}.outbox (LIKE outbox INCLUDING ALL)`);
}

/** Both shapes of a bare multi-row insert, each into fresh tables; the faster is the limit. */
export async function pgReference(pool: Pool, users: UserCreated[], batch: number): Promise<PgLimit> {
  await freshRefTables(pool);
  const values = await pgValues(pool, users, batch);
  await freshRefTables(pool);
  const unnest = await pgUnnest(pool, users, batch);
  return { values, unnest };
}

async function pgUnnest(pool: Pool, users: UserCreated[], batch: number): Promise<RunFigures> {
  const c = await pool.connect();
  try {
    const rec = recorder();
    for (let i = 0; i < users.length; i += batch) {
      const rows = users.slice(i, i + batch);
      const col = <K extends keyof UserCreated>(k: K) => rows.map((u) => u[k]);
      await c.query("BEGIN");
      await c.query(
        `INSERT INTO ${REF}.users (id, first_name, last_name, gender, address, country, post_code, email, username, dob, registered_date, phone, picture, fetched_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                              $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::timestamptz[])`,
        [
          col("id"),
          col("first_name"),
          col("last_name"),
          col("gender"),
          col("address"),
          col("country"),
          col("post_code"),
          col("email"),
          col("username"),
          rows.map((u) => iso(u.dob)),
          rows.map((u) => iso(u.registered_date)),
          col("phone"),
          col("picture"),
          rows.map((u) => iso(u.fetched_at)),
        ],
      );
      await c.query(
        `INSERT INTO ${REF}.outbox (user_id, bucket, payload) SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::jsonb[])`,
        [col("id"), rows.map((u) => keyBucket(u.id)), rows.map((u) => JSON.stringify(u))],
      );
      await c.query("COMMIT");
      rec.tick(i + rows.length);
    }
    return rec.figures();
  } finally {
    c.release();
  }
}

/** Rows per INSERT ... VALUES statement: 14 parameters a row, at most 65,535 per statement. */
const VALUES_ROWS = 4000;

async function pgValues(pool: Pool, users: UserCreated[], batch: number): Promise<RunFigures> {
  const c = await pool.connect();
  try {
    const rec = recorder();
    for (let i = 0; i < users.length; i += batch) {
      await c.query("BEGIN");
      // a batch above VALUES_ROWS rows takes several statements, still one transaction
      for (let j = i; j < Math.min(i + batch, users.length); j += VALUES_ROWS) {
        const rows = users.slice(j, Math.min(j + VALUES_ROWS, i + batch, users.length));
        const up: unknown[] = [];
        const uv: string[] = [];
        const ov: string[] = [];
        const op: unknown[] = [];
        rows.forEach((u, r) => {
          uv.push(`(${Array.from({ length: 14 }, (_, k) => `$${r * 14 + k + 1}`).join(",")})`);
          up.push(
            u.id,
            u.first_name,
            u.last_name,
            u.gender,
            u.address,
            u.country,
            u.post_code,
            u.email,
            u.username,
            iso(u.dob),
            iso(u.registered_date),
            u.phone,
            u.picture,
            iso(u.fetched_at),
          );
          ov.push(`($${r * 3 + 1},$${r * 3 + 2},$${r * 3 + 3})`);
          op.push(u.id, keyBucket(u.id), JSON.stringify(u));
        });
        await c.query(
          `INSERT INTO ${REF}.users (id, first_name, last_name, gender, address, country, post_code, email, username, dob, registered_date, phone, picture, fetched_at) VALUES ${uv.join(",")}`,
          up,
        );
        await c.query(`INSERT INTO ${REF}.outbox (user_id, bucket, payload) VALUES ${ov.join(",")}`, op);
      }
      await c.query("COMMIT");
      rec.tick(Math.min(i + batch, users.length));
    }
    return rec.figures();
  } finally {
    c.release();
  }
}

export interface KafkaMsg {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

async function refTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
  });
  await admin.disconnect();
}

/**
 * Kafka alone (a diagnostic beside the relay's limit): the same messages (key, Avro bytes,
 * header) from a bare kafkajs producer with the relay's producer settings (idempotent, acks=all,
 * one request in flight), `batch` messages per send, to a topic with the same number of partitions.
 */
export async function kafkaReference(
  kafka: Kafka,
  topic: string,
  partitions: number,
  msgs: KafkaMsg[],
  batch: number,
): Promise<RunFigures> {
  await refTopic(kafka, topic, partitions);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: msgs.slice(0, 1) }); // metadata + producer id
    const rec = recorder();
    for (let i = 0; i < msgs.length; i += batch) {
      await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: msgs.slice(i, i + batch) });
      rec.tick(Math.min(i + batch, msgs.length));
    }
    return rec.figures();
  } finally {
    await producer.disconnect();
  }
}

/**
 * The relay's limit: the least work a relay must do per record, with the bare clients, on the
 * same rows. The users' outbox rows are first put into a fresh <REF>.outbox (not timed); then
 * one connection and one producer (the relay's settings) loop: BEGIN; claim the oldest `batch`
 * unpublished rows FOR UPDATE SKIP LOCKED; Avro-encode each payload (Confluent frame); send;
 * UPDATE published_at; COMMIT. That is the relay's PostgreSQL round trip (claim + mark) and its
 * Kafka send, without its bucket locks, in-flight record and bookkeeping.
 */
export async function relayReference(
  pool: Pool,
  kafka: Kafka,
  topic: string,
  partitions: number,
  users: UserCreated[],
  batch: number,
  schemaId: number,
  type: AvroType,
): Promise<RunFigures> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${REF}`);
  await pool.query(`DROP TABLE IF EXISTS ${REF}.outbox`);
  await pool.query(`CREATE TABLE ${REF}.outbox (LIKE outbox INCLUDING ALL)`);
  for (let i = 0; i < users.length; i += 5000) {
    const rows = users.slice(i, i + 5000);
    await pool.query(
      `INSERT INTO ${REF}.outbox (user_id, bucket, payload) SELECT * FROM unnest($1::uuid[], $2::smallint[], $3::jsonb[])`,
      [rows.map((u) => u.id), rows.map((u) => keyBucket(u.id)), rows.map((u) => JSON.stringify(u))],
    );
  }
  await pool.query(`VACUUM ANALYZE ${REF}.outbox`);
  await refTopic(kafka, topic, partitions);
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const c = await pool.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [{ key: "warm-up", value: Buffer.from("x") }] }); // metadata + producer id
    const rec = recorder();
    let done = 0;
    for (;;) {
      await c.query("BEGIN");
      const r = await c.query<{ id: string; user_id: string; payload: Record<string, unknown> }>(
        `SELECT id::text, user_id::text, payload FROM ${REF}.outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batch],
      );
      if (r.rows.length === 0) {
        await c.query("COMMIT");
        break;
      }
      const messages = r.rows.map((x) => ({
        key: x.user_id,
        value: encodeFrame(schemaId, type, x.payload),
        headers: { outbox_id: x.id },
      }));
      await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages });
      await c.query(`UPDATE ${REF}.outbox SET published_at = now() WHERE id = ANY($1::bigint[])`, [
        r.rows.map((x) => x.id),
      ]);
      await c.query("COMMIT");
      done += r.rows.length;
      rec.tick(done);
    }
    return rec.figures();
  } finally {
    c.release();
    await producer.disconnect();
  }
}

/** The processor's write of `user` at `writeTime` (USING TIMESTAMP, as every relayed record), into REF_TABLE. */
function refWrite(user: UserCreated, writeTime: bigint | undefined): { query: string; params: unknown[] } {
  const w = userWrite({ user, writeTime });
  return { query: w.query.replace(`${KEYSPACE}.${USERS_TABLE}`, REF_TABLE), params: w.params };
}

/**
 * Cassandra: the same rows, the processor's prepared INSERT (with a write time, USING TIMESTAMP,
 * as the processor writes every relayed record), `concurrency` requests in flight through
 * cassandra-driver (what its executeConcurrent does, with a tick every 1000 rows for the steady
 * rate), into a fresh REF_TABLE. Figures per concurrency level.
 */
export async function cassandraReference(
  client: CassandraClient,
  users: UserCreated[],
  concurrencyLevels: number[],
  /** run after each level's writes, before its table is dropped (the bench flushes them: cassandra-settle.ts) */
  afterEach: () => Promise<unknown> = async () => undefined,
): Promise<Map<number, RunFigures>> {
  const out = new Map<number, RunFigures>();
  for (const concurrencyLevel of concurrencyLevels) {
    // a fresh table each time: the same inserts, not overwrites of the previous level's rows
    await client.execute(`DROP TABLE IF EXISTS ${REF_TABLE}`);
    await client.execute(USERS_TABLE_CQL.replace(`${KEYSPACE}.${USERS_TABLE}`, REF_TABLE));
    const writes = users.map((u, i) => refWrite(u, OUTBOX_WRITETIME_BASE + BigInt(i + 1)));
    await client.execute(writes[0].query, writes[0].params, { prepare: true }); // prepared before the clock starts
    const rec = recorder();
    let next = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrencyLevel, writes.length) }, async () => {
        while (next < writes.length) {
          const w = writes[next++];
          // a write timed out on a loaded machine is written again, as the processor would
          for (let attempt = 1; ; attempt++) {
            try {
              await client.execute(w.query, w.params, { prepare: true });
              break;
            } catch (e) {
              if (attempt >= 5) throw e;
              await new Promise((r) => setTimeout(r, 100 * attempt));
            }
          }
          if (++done % 1000 === 0 || done === writes.length) rec.tick(done);
        }
      }),
    );
    out.set(concurrencyLevel, rec.figures());
    await afterEach();
  }
  return out;
}

export async function cleanupReferences(o: {
  pool?: Pool;
  pgSchemas?: string[];
  kafka?: Kafka;
  topics?: string[];
  groups?: string[];
  cassandra?: CassandraClient;
}): Promise<void> {
  if (o.pool) {
    for (const schema of [REF, ...(o.pgSchemas ?? [])])
      await o.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  }
  if (o.cassandra) await o.cassandra.execute(`DROP TABLE IF EXISTS ${REF_TABLE}`).catch(() => undefined);
  if (o.kafka) {
    const admin = o.kafka.admin();
    await admin.connect();
    if (o.topics?.length) await admin.deleteTopics({ topics: o.topics }).catch(() => undefined);
    if (o.groups?.length) await admin.deleteGroups(o.groups).catch(() => undefined);
    await admin.disconnect();
  }
}

/**
 * Diagnostic beside the processor: a kafkajs consumer group (the processor's fetch settings)
 * reading the same `n` messages and doing nothing with them but committing each batch's end: the
 * CPU the reading alone costs (this process; the broker's shows in the services' CPU), which the
 * processor pays on the same 2 cores on top of its Cassandra writes. The group must already be at
 * the messages' start (its committed offsets).
 */
export async function kafkaConsumeReference(
  kafka: Kafka,
  topic: string,
  groupId: string,
  n: number,
  partitionsAtOnce: number,
): Promise<RunFigures> {
  const consumer = kafka.consumer({
    groupId,
    maxBytes: 16 << 20,
    maxWaitTimeInMs: 750,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let rec: ReturnType<typeof recorder> | undefined;
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: partitionsAtOnce,
    eachBatch: async ({ batch, resolveOffset }) => {
      rec ??= recorder();
      let bytes = 0;
      for (const m of batch.messages) bytes += m.value?.length ?? 0; // touch every message, as a reader must
      if (bytes < 0) throw new Error("unreachable");
      const last = batch.lastOffset();
      resolveOffset(last);
      await consumer.commitOffsets([
        { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
      ]);
      done += batch.messages.length;
      rec.tick(done);
      if (done >= n) finish();
    },
  });
  const timeout = setTimeout(finish, 300_000);
  await finished;
  clearTimeout(timeout);
  await consumer.disconnect();
  return rec?.figures() ?? { mean: NaN, steady: NaN, cpuUsPerRecord: NaN, records: 0 };
}

/**
 * The processor's floor on these cores (a diagnostic beside its limit): the work it cannot avoid
 * with these clients, bare. A kafkajs consumer group (the processor's fetch settings) reads the
 * same `n` messages; each batch is Avro-decoded with avsc (the reader type, no registry, no
 * validation) and upserted with cassandra-driver's executeConcurrent at `concurrency` in flight
 * (the processor's prepared INSERT with the write time of the outbox_id header, into
 * REF_TABLE), then its end offset committed. No checks, no dead letters, no metrics,
 * no retries. The group must already be at the
 * messages' start.
 */
export async function readAndInsertReference(
  kafka: Kafka,
  client: CassandraClient,
  topic: string,
  groupId: string,
  n: number,
  partitionsAtOnce: number,
  concurrency: number,
  type: AvroType,
): Promise<RunFigures> {
  await client.execute(`DROP TABLE IF EXISTS ${REF_TABLE}`);
  await client.execute(USERS_TABLE_CQL.replace(`${KEYSPACE}.${USERS_TABLE}`, REF_TABLE));
  const consumer = kafka.consumer({
    groupId,
    maxBytes: 16 << 20,
    maxWaitTimeInMs: 750,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let rec: ReturnType<typeof recorder> | undefined;
  let done = 0;
  let prepared = false;
  const write = (m: KafkaMessage) => {
    const wt = writeTimeOf(m.headers);
    return refWrite(type.fromBuffer(m.value!.subarray(5)) as UserCreated, wt.ok ? wt.micros : undefined);
  };
  let finish: (e?: unknown) => void = () => undefined;
  const finished = new Promise<void>((res, rej) => (finish = (e) => (e ? rej(e) : res())));
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: partitionsAtOnce,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      try {
        if (!prepared) {
          prepared = true;
          const first = write(batch.messages[0]);
          await client.execute(first.query, first.params, { prepare: true });
        }
        rec ??= recorder();
        const queries = batch.messages.map(write);
        await concurrent.executeConcurrent(client, queries, { concurrencyLevel: concurrency });
        const last = batch.lastOffset();
        resolveOffset(last);
        await consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
        ]);
        await heartbeat();
        done += batch.messages.length;
        rec.tick(done);
        if (done >= n) finish();
      } catch (e) {
        finish(e);
      }
    },
  });
  const timeout = setTimeout(
    () => finish(new Error(`read + insert reference: ${done} of ${n} messages after 300 s`)),
    300_000,
  );
  try {
    await finished;
  } finally {
    clearTimeout(timeout);
    await consumer.disconnect();
  }
  return rec?.figures() ?? { mean: NaN, steady: NaN, cpuUsPerRecord: NaN, records: 0 };
}
