/**
 * Exactly once on the topic, even when a relay dies (or its send fails, or PostgreSQL goes away)
 * between Kafka's ack and its commit:
 *  - before a send, the relay records (autocommit) a relay_inflight row: the buckets of the round
 *    and the topic's end offsets, under an advisory lock its round transaction holds;
 *  - the round's commit deletes that row together with marking the rows published;
 *  - a row whose lock is free belongs to no live round: its send may or may not have landed. The
 *    next round of any relay reads the topic from those offsets, marks the outbox ids it finds
 *    (header outbox_id) published, and deletes the row. Until then no relay claims its buckets.
 */
import { randomInt, randomUUID } from "node:crypto";
import type { Admin, Kafka } from "kafkajs";
import type { Pool, PoolClient } from "pg";
import type { Logger } from "../lib/logger";
import { readFrom } from "../lib/topic-reader";

export const INFLIGHT_LOCK_CLASS = 72_012;

export interface Inflight {
  id: string;
  lockKey: number;
  /** The topic's partition count when the send began (from the same end offsets). */
  partitions: number;
}

/** Inside the round's transaction, before its send: lock, then record (committed at once) the send. */
export async function recordInflight(
  client: PoolClient,
  pool: Pool,
  admin: Admin,
  topic: string,
  buckets: number[],
): Promise<Inflight> {
  const lockKey = randomInt(1, 2 ** 31 - 1);
  await client.query("SELECT pg_advisory_xact_lock($1::int, $2::int)", [INFLIGHT_LOCK_CLASS, lockKey]);
  const offsets = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  const f: Inflight = { id: randomUUID(), lockKey, partitions: Object.keys(offsets).length };
  await pool.query(
    "INSERT INTO relay_inflight (id, lock_key, buckets, topic, offsets) VALUES ($1, $2, $3::smallint[], $4, $5)",
    [f.id, f.lockKey, buckets, topic, JSON.stringify(offsets)],
  );
  return f;
}

/** In the round's transaction, with the commit that marks the rows published. */
export async function clearInflight(client: PoolClient, f: Inflight): Promise<void> {
  await client.query("DELETE FROM relay_inflight WHERE id = $1", [f.id]);
}

/**
 * Inside a transaction: take the orphaned in-flight sends (lock free), find their rows on the
 * topic, mark those published, delete the records. Returns the number of rows marked.
 */
export async function reconcileOrphans(
  client: PoolClient,
  kafka: Kafka,
  log: Logger,
): Promise<{ orphans: number; marked: number }> {
  const r = await client.query<{ id: string; topic: string; offsets: Record<string, string> }>(
    "SELECT id::text, topic, offsets FROM relay_inflight WHERE pg_try_advisory_xact_lock($1::int, lock_key)",
    [INFLIGHT_LOCK_CLASS],
  );
  if (r.rows.length === 0) return { orphans: 0, marked: 0 };
  let marked = 0;
  for (const topic of new Set(r.rows.map((x) => x.topic))) {
    const from = new Map<number, string>();
    for (const row of r.rows.filter((x) => x.topic === topic)) {
      for (const [p, off] of Object.entries(row.offsets)) {
        const cur = from.get(Number(p));
        if (cur === undefined || BigInt(off) < BigInt(cur)) from.set(Number(p), off);
      }
    }
    // (outbox id, key) pairs: the topic may also carry rows of another outbox (another schema)
    const ids: string[] = [];
    const keys: string[] = [];
    const t0 = Date.now();
    const read = await readFrom(kafka, topic, from, (_p, m) => {
      const h = m.headers?.outbox_id;
      const v = Buffer.isBuffer(h) ? h.toString() : typeof h === "string" ? h : undefined;
      const k = m.key?.toString();
      if (v && /^\d+$/.test(v) && k && /^[0-9a-f-]{36}$/i.test(k)) {
        ids.push(v);
        keys.push(k);
      }
    });
    if (ids.length > 0) {
      const u = await client.query(
        `UPDATE outbox o SET published_at = now() FROM unnest($1::bigint[], $2::uuid[]) AS t(id, user_id)
          WHERE o.id = t.id AND o.user_id = t.user_id AND o.published_at IS NULL`,
        [ids, keys],
      );
      marked += u.rowCount ?? 0;
    }
    log.warn(
      { topic, orphans: r.rows.length, read, marked, readMs: Date.now() - t0 },
      "reconciled sends of a relay round that did not commit",
    );
  }
  await client.query("DELETE FROM relay_inflight WHERE id = ANY($1::uuid[])", [r.rows.map((x) => x.id)]);
  return { orphans: r.rows.length, marked };
}
