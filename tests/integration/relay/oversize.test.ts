/**
 * The relay against the real Kafka, on a topic of its own whose max.message.bytes is small: a row
 * larger than the topic takes is parked with its reason (before any send), the others are published
 * and the relay goes on; when the topic's limit is lowered under a running relay, the send Kafka
 * refuses (MESSAGE_TOO_LARGE) parks the row that does not fit instead of failing rounds forever.
 * A scratch PostgreSQL schema holds the outbox, so no other test's rows are claimed.
 */
import assert from "node:assert/strict";
import { ConfigResourceTypes, type Admin, type Kafka } from "kafkajs";
import { generateUser } from "../../../runtime/api/generate";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import { loadConfig, relaySchema } from "../../../runtime/lib/config";
import { keyBucket } from "../../../runtime/lib/key-bucket";
import { createLogger } from "../../../runtime/lib/logger";
import { readFrom } from "../../../runtime/lib/topic-reader";
import { startRelay, type RelaySummary } from "../../../runtime/relay/relay";
import { kafka as itKafka, scratchSchema, servicesEnv, uniq } from "../workers/harness";

type Scratch = Awaited<ReturnType<typeof scratchSchema>>;

describe("relay: rows larger than the topic takes are parked (real Kafka)", function () {
  this.timeout(180_000);
  let scratch: Scratch;
  let k: Kafka;
  let admin: Admin;
  let topic: string;
  const log = createLogger("relay-oversize-it", "warn");

  before(async () => {
    scratch = await scratchSchema("it_oversize", 6);
    k = itKafka();
    admin = k.admin();
    await admin.connect();
    topic = uniq("it-oversize");
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: [{ name: "max.message.bytes", value: "8192" }],
        },
      ],
    });
  });

  after(async () => {
    await admin?.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin?.disconnect();
    await scratch?.drop();
  });

  /** n users of a seed as outbox rows; `pad` characters of picture make a row as large as wanted. */
  async function insertRows(seed: string, n: number, pad: (i: number) => number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = normalizeUser(generateUser(seed, 1, i), Date.now());
      assert.ok(r.ok);
      const payload = { ...r.user, picture: r.user.picture + "x".repeat(pad(i)) };
      const q = await scratch.pg.query<{ id: string }>(
        "INSERT INTO outbox (user_id, bucket, payload) VALUES ($1, $2, $3) RETURNING id::text",
        [r.user.id, keyBucket(r.user.id), JSON.stringify(payload)],
      );
      ids.push(q.rows[0].id);
    }
    return ids;
  }

  async function onTopic(): Promise<string[]> {
    const ids: string[] = [];
    const from = new Map([0, 1, 2].map((p) => [p, "0"]));
    await readFrom(k, topic, from, (_p, m) => ids.push(String(m.headers?.outbox_id)));
    return ids.sort((a, b) => Number(a) - Number(b));
  }

  function config() {
    return loadConfig(relaySchema, { ...servicesEnv(), RELAY_POLL_MS: "50", METRICS_PORT: "0", LOG_LEVEL: "warn" });
  }

  async function parkedRows(): Promise<{ id: string; park_reason: string }[]> {
    const r = await scratch.pg.query<{ id: string; park_reason: string }>(
      "SELECT id::text, park_reason FROM outbox WHERE parked_at IS NOT NULL ORDER BY id",
    );
    return r.rows;
  }

  it("parks a row over the topic's max.message.bytes before sending; publishes the rest; drains", async () => {
    const ids = await insertRows(uniq("oversize"), 30, (i) => (i === 7 ? 20_000 : 0));
    const stop = new AbortController();
    const relay = startRelay({
      config: config(),
      log,
      pool: scratch.pg,
      topic,
      untilDrained: true,
      signal: stop.signal,
    });
    const timer = setTimeout(() => stop.abort(), 60_000);
    let s: RelaySummary;
    try {
      s = await relay.done;
    } finally {
      clearTimeout(timer);
    }
    const parked = await parkedRows();
    assert.deepEqual(
      parked.map((p) => p.id),
      [ids[7]],
      `parked ${JSON.stringify(parked)}, ${JSON.stringify(s)}`,
    );
    assert.match(parked[0].park_reason, /too large: \d+ bytes .*max\.message\.bytes 8192/);
    assert.equal(s.published, 29);
    assert.equal(s.parked, 1);
    assert.equal(s.failedRounds, 0, "no round failed: the row was parked before any send");
    assert.deepEqual(
      await onTopic(),
      ids.filter((_x, i) => i !== 7),
    );
  });

  it("a send Kafka refuses as too large (limit lowered under it) parks that row; the relay goes on", async () => {
    const before = (await onTopic()).length;
    const stop = new AbortController();
    const relay = startRelay({ config: config(), log, pool: scratch.pg, topic, signal: stop.signal });
    try {
      const first = await insertRows(uniq("lowered-a"), 5, () => 0);
      await until(async () => (await onTopic()).length === before + 5, 30_000, "the first rows published");
      // lowered after the relay read the limit: its pre-check still lets a 5 kB row through
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: topic,
            configEntries: [{ name: "max.message.bytes", value: "4096" }],
          },
        ],
      });
      const rows = await insertRows(uniq("lowered-b"), 10, (i) => (i === 3 ? 5_000 : 0));
      await until(async () => (await onTopic()).length === before + 5 + 9, 60_000, "the other rows published");
      const parked = await parkedRows();
      assert.ok(
        parked.some((p) => p.id === rows[3]),
        `parked: ${JSON.stringify(parked)}`,
      );
      const reason = parked.find((p) => p.id === rows[3])!.park_reason;
      assert.match(reason, /too large|larger than the max message size|max\.message\.bytes/);
      const published = await onTopic();
      for (const id of [...first, ...rows.filter((_x, i) => i !== 3)]) {
        assert.equal(published.filter((x) => x === id).length, 1, `row ${id} once`);
      }
    } finally {
      stop.abort();
      await relay.done.catch(() => undefined);
    }
  });
});

async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${ms} ms: ${what}`);
}
