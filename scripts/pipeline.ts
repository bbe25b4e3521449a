/**
 * `npm run pipeline [-- options]`: the whole data path on this machine, without Docker.
 *
 *   1. scripts/services up postgres zookeeper kafka schema-registry cassandra (prints its progress)
 *   2. the offline randomuser API in this process, on an ephemeral port
 *   3. the three workers as CHILD PROCESSES, exactly as deployed: `runtime/main.ts <worker>`
 *      (each its own Node process: three event loops on the machine's cores instead of one, the
 *      same signals and exit codes as in a container, and each worker's own /metrics, which
 *      this script scrapes once per second for the progress line)
 *   4. a progress line per second: fetched, staged, published, stored (per second and total),
 *      this run's rows still in the outbox, consumer lag, rejected records, DLQ messages
 *
 * Its figures and its finish are about its own run, even on services that hold the history of
 * earlier runs and tests: the processor reads in a consumer group of its own, started at the
 * topic's end (pipeline-<run>, deleted at the end; PROCESSOR_GROUP_ID to use a lasting one);
 * "outbox" counts the rows this run added; it finishes when its own users are all in Cassandra
 * and the summary counts those (ids computed from the seed's pages it ingested). Rows that
 * others left pending in the outbox are published too (the relay drains what it finds); they are
 * counted apart.
 *
 * Options (flag, or env):
 *   --users N        (PIPELINE_USERS, default 20000) ingest N users, stop when all are stored
 *   --forever        (PIPELINE_FOREVER=1) ingest a batch every --interval-ms until Ctrl-C
 *   --batch B        (INGEST_BATCH_SIZE, default 1000) users per API call / PG transaction
 *   --interval-ms T  (INGEST_INTERVAL_MS, default 1000) pause between batches with --forever
 *   --seed S         (INGEST_SEED, default "pipeline") the API seed; a re-run continues its pages
 *   --no-services    do not run scripts/services up (they are up already)
 *   --plain          one plain line per second even on a terminal (automatic without a TTY)
 * Ctrl-C / SIGTERM stops the workers cleanly (each finishes or gives back its batch in hand);
 * the services keep running: `scripts/services down` stops them.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync } from "node:fs";
import net from "node:net";
import { join, resolve } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { Client as PgClient } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { DLQ_TOPIC, KEYSPACE, USERS_TABLE, USERS_TOPIC } from "../runtime/contracts/names";
import { generatePage } from "../runtime/api/generate";
import { createCassandraClient } from "../runtime/lib/cassandra";
import { groupLag, startApiServer } from "../runtime/index";
import { loadServicesEnv, pipelineHome } from "../tests/support/services";

export const REPO = resolve(__dirname, "..");
export const PIPELINE_SERVICES = ["postgres", "zookeeper", "kafka", "schema-registry", "cassandra"];

// ---------------------------------------------------------------------------------------------
// helpers shared with bench/

/** A TCP port free right now on 127.0.0.1 (for a child's METRICS_PORT). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

/** `scripts/services up <the services the workers need>`; its progress goes to our stderr. */
export function servicesUp(names: string[] = PIPELINE_SERVICES): void {
  const known = new Set(
    readdirSync(join(REPO, "scripts", "services.d"))
      .filter((f) => f.endsWith(".sh"))
      .map((f) => f.slice(0, -3)),
  );
  const missing = names.filter((n) => !known.has(n));
  if (missing.length > 0)
    process.stderr.write(`pipeline: scripts/services knows no ${missing.join(", ")} yet; starting the others\n`);
  const r = spawnSync(join(REPO, "scripts", "services"), ["up", ...names.filter((n) => known.has(n))], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) throw new Error(`scripts/services up failed (exit ${r.status ?? r.signal})`);
}

export interface WorkerProc {
  name: string;
  child: ChildProcess;
  metricsPort: number;
  logFile: string;
  /** Resolves with the exit code when the process ended. */
  exited: Promise<number>;
  /** The last JSON line on stdout without a pino "level": the --once summary. */
  summary(): Record<string, unknown> | undefined;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code. */
  stop(graceMs?: number): Promise<number>;
}

/**
 * `node --import tsx runtime/main.ts <worker> [--once]` in its own process group (so a Ctrl-C on
 * the terminal reaches only us, and we stop the workers in order with one SIGTERM each).
 * stdout+stderr (pino JSON) go to logDir/<name>.log. `nodeArgs`: flags for node itself (the bench's
 * --cpu-prof, which NODE_OPTIONS does not allow).
 */
export async function spawnWorker(
  name: string,
  args: string[],
  env: Record<string, string>,
  logDir: string,
  nodeArgs: string[] = [],
): Promise<WorkerProc> {
  mkdirSync(logDir, { recursive: true });
  const metricsPort = await freePort();
  const logFile = join(logDir, `${name}.log`);
  const out = createWriteStream(logFile, { flags: "a" });
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", join(REPO, "runtime", "main.ts"), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env, METRICS_PORT: String(metricsPort) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let last: Record<string, unknown> | undefined;
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    out.write(d);
    buf += d.toString("utf8");
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith("{") && !line.includes('"level":')) {
        try {
          last = JSON.parse(line) as Record<string, unknown>;
        } catch {
          /* not a summary */
        }
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => out.write(d));
  const exited = new Promise<number>((res) => child.once("exit", (code, sig) => res(code ?? (sig ? 128 : 1))));
  void exited.then(() => out.end());
  const stop = async (graceMs = 30_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    }
    return exited;
  };
  return { name, child, metricsPort, logFile, exited, summary: () => last, stop };
}

/** Prometheus text → "name{labels}" → value (labels as written by prom-client). */
export async function scrape(port: number): Promise<Map<string, number> | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(800) });
    if (!r.ok) return undefined;
    const m = new Map<string, number>();
    for (const line of (await r.text()).split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
    }
    return m;
  } catch {
    return undefined;
  }
}

/** Sum of the samples of `name` whose labels include every `labels` pair. */
export function sample(
  m: Map<string, number> | undefined,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  if (!m) return undefined;
  let sum: number | undefined;
  for (const [k, v] of m) {
    if (k !== name && !k.startsWith(name + "{")) continue;
    if (!Object.entries(labels).every(([l, val]) => k.includes(`${l}="${val}"`))) continue;
    sum = (sum ?? 0) + v;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// the pipeline command

/** The user ids the offline API serves for `seed`, pages from..from+pages-1 (as ingest stores them). */
export function idsOfPages(seed: string, from: number, pages: number, results: number): string[] {
  const out: string[] = [];
  for (let p = from; p < from + pages; p++) {
    for (const raw of generatePage(seed, p, results).results)
      out.push((raw as { login: { uuid: string } }).login.uuid.toLowerCase());
  }
  return out;
}

/** How many of `ids` have a row in spark_streams.created_users. */
export async function storedOf(cass: CassandraClient, ids: string[]): Promise<number> {
  const cql = `SELECT id FROM ${KEYSPACE}.${USERS_TABLE} WHERE id IN ?`;
  let next = 0;
  let n = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < ids.length) {
        const chunk = ids.slice(next, next + 100);
        next += 100;
        const r = await cass.execute(cql, [chunk], { prepare: true });
        n += r.rowLength;
      }
    }),
  );
  return n;
}

interface Options {
  users: number;
  forever: boolean;
  batch: number;
  intervalMs: number;
  seed: string;
  services: boolean;
  plain: boolean;
}

const USAGE = `usage: npm run pipeline -- [--users N | --forever] [--batch B] [--interval-ms T] [--seed S] [--no-services] [--plain]`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
  const o: Options = {
    users: Number(env.PIPELINE_USERS || 20000),
    forever: ["1", "true", "yes"].includes((env.PIPELINE_FOREVER ?? "").toLowerCase()),
    batch: Number(env.INGEST_BATCH_SIZE || 1000),
    intervalMs: Number(env.INGEST_INTERVAL_MS || 1000),
    seed: env.INGEST_SEED || "pipeline",
    services: true,
    plain: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--users") o.users = Number(val());
    else if (a === "--forever") o.forever = true;
    else if (a === "--batch") o.batch = Number(val());
    else if (a === "--interval-ms") o.intervalMs = Number(val());
    else if (a === "--seed") o.seed = val();
    else if (a === "--no-services") o.services = false;
    else if (a === "--plain") o.plain = true;
    else if (a === "-h" || a === "--help") throw new Error(USAGE);
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (!Number.isInteger(o.users) || o.users < 1) throw new Error(`--users must be a positive integer\n${USAGE}`);
  if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 5000)
    throw new Error(`--batch must be an integer from 1 to 5000\n${USAGE}`);
  if (!Number.isInteger(o.intervalMs) || o.intervalMs < 0)
    throw new Error(`--interval-ms must be an integer ≥ 0\n${USAGE}`);
  return o;
}

const fmt = (n: number | undefined) =>
  n === undefined || Number.isNaN(n) ? "-" : Math.round(n).toLocaleString("en-US");

interface Counts {
  fetched?: number;
  staged?: number;
  published?: number;
  stored?: number;
  rejected?: number;
  deadLettered?: number;
  lag?: number;
  outbox?: number;
  dlqTopic?: number;
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const tty = Boolean(process.stdout.isTTY) && !o.plain;
  const say = (s: string) => process.stdout.write(s + "\n");

  if (o.services) servicesUp();
  const senv = loadServicesEnv(["PG_HOST", "KAFKA_BROKERS", "CASSANDRA_CONTACT_POINTS", "CASSANDRA_LOCAL_DC"]);
  if (!senv.SCHEMA_REGISTRY_URL && !process.env.SCHEMA_REGISTRY_URL) {
    throw new Error(
      "services.env has no SCHEMA_REGISTRY_URL: the schema registry is not up (scripts/services up schema-registry)",
    );
  }
  const api = await startApiServer({ port: 0 });
  const logDir = join(pipelineHome(), "run", "pipeline");
  const batches = Math.ceil(o.users / o.batch);
  // a group of its own from the topic's end: the topic's history (earlier runs, tests) is not this run's
  const ownGroup = !process.env.PROCESSOR_GROUP_ID;
  const groupId = process.env.PROCESSOR_GROUP_ID || `pipeline-${Date.now().toString(36)}`;
  const env: Record<string, string> = {
    ...senv,
    LOG_LEVEL: process.env.LOG_LEVEL || "info",
    API_BASE_URL: api.url,
    INGEST_SEED: o.seed,
    INGEST_BATCH_SIZE: String(o.batch),
    INGEST_BATCHES: String(batches),
    INGEST_INTERVAL_MS: String(o.intervalMs),
    PROCESSOR_GROUP_ID: groupId,
  };
  say(`pipeline: API ${api.url}; workers: ingest, relay, processor (child processes, logs in ${logDir}/)`);
  say(
    o.forever
      ? `pipeline: ingesting ${o.batch} users every ${o.intervalMs} ms until Ctrl-C`
      : `pipeline: ingesting ${fmt(batches * o.batch)} users (${batches} batches of ${o.batch}, seed "${o.seed}")`,
  );

  // side connections for the figures no single worker has: outbox backlog, group lag, DLQ size
  const pg = new PgClient({
    host: senv.PG_HOST,
    port: Number(senv.PG_PORT),
    database: senv.PG_DATABASE,
    user: senv.PG_USER,
    password: senv.PG_PASSWORD,
  });
  await pg.connect();
  const kafka = new Kafka({
    clientId: "pipeline-progress",
    brokers: senv.KAFKA_BROKERS.split(","),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const cass = createCassandraClient({
    CASSANDRA_CONTACT_POINTS: senv.CASSANDRA_CONTACT_POINTS.split(","),
    CASSANDRA_LOCAL_DC: senv.CASSANDRA_LOCAL_DC,
    CASSANDRA_USER: senv.CASSANDRA_USER,
    CASSANDRA_PASSWORD: senv.CASSANDRA_PASSWORD,
  });
  await cass.connect();
  // where this run starts: the seed's next page (its users are this run's), the outbox's last id
  const firstPage = await pg
    .query<{ next_page: number }>("SELECT next_page FROM ingest_cursor WHERE seed = $1", [o.seed])
    .then(
      (r) => r.rows[0]?.next_page ?? 1,
      () => 1,
    ); // no table yet: a first run
  const outboxFrom = await pg.query<{ id: string }>("SELECT coalesce(max(id), 0)::text AS id FROM outbox").then(
    (r) => r.rows[0].id,
    () => "0",
  );
  const dlqSize = () =>
    admin.fetchTopicOffsets(DLQ_TOPIC).then(
      (ps) => ps.reduce((s, p) => s + Number(p.high) - Number(p.low), 0),
      () => undefined,
    );
  const dlqFrom = (await dlqSize()) ?? 0; // the DLQ's history is not this run's
  if (ownGroup) {
    const ends = await admin.fetchTopicOffsets(USERS_TOPIC).catch(() => undefined); // no topic yet: nothing to skip
    if (ends)
      await admin.setOffsets({
        groupId,
        topic: USERS_TOPIC,
        partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
      });
  }

  const processor = await spawnWorker("processor", ["processor"], env, logDir);
  const relay = await spawnWorker("relay", ["relay"], env, logDir);
  const ingest = await spawnWorker("ingest", o.forever ? ["ingest"] : ["ingest", "--once"], env, logDir);
  const workers = [ingest, relay, processor];
  const killAll = () => workers.forEach((w) => w.child.exitCode === null && w.child.kill("SIGTERM"));
  process.on("exit", killAll);

  let stopping = false;
  let interrupted = false;
  const onSignal = () => {
    if (stopping) {
      for (const w of workers) w.child.kill("SIGKILL");
      process.exit(130);
    }
    interrupted = true;
    stopping = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const t0 = Date.now();
  const c: Counts = {};
  let prev: Counts = {};
  let prevT = t0;
  let ingestDone = false;
  let failed: string | undefined;
  let lastLineLen = 0;
  for (const w of workers) {
    void w.exited.then((code) => {
      if (w === ingest && code === 0) ingestDone = true;
      else if (!stopping) failed = `${w.name} exited with code ${code}; see ${w.logFile}`;
    });
  }

  const rate = (k: keyof Counts, dt: number) => (c[k] !== undefined ? (c[k]! - (prev[k] ?? 0)) / dt : undefined);
  while (!stopping && !failed) {
    await new Promise((r) => setTimeout(r, 1000));
    const [mi, mr, mp] = await Promise.all([
      scrape(ingest.metricsPort),
      scrape(relay.metricsPort),
      scrape(processor.metricsPort),
    ]);
    const sum = ingest.summary();
    // a counter without samples yet is 0 when its worker answered; else keep the last figure
    const get = (m: Map<string, number> | undefined, name: string, fallback: number | undefined) =>
      sample(m, name) ?? (m ? 0 : fallback);
    c.fetched = get(mi, "pipeline_records_in_total", (sum?.fetched as number | undefined) ?? c.fetched);
    c.staged = get(mi, "pipeline_records_out_total", (sum?.staged as number | undefined) ?? c.staged);
    c.rejected = get(mi, "pipeline_records_failed_total", (sum?.rejected as number | undefined) ?? c.rejected);
    c.published = get(mr, "pipeline_records_out_total", c.published);
    c.stored = get(mp, "pipeline_records_out_total", c.stored);
    c.deadLettered = get(mp, "pipeline_records_failed_total", c.deadLettered);
    c.outbox = await pg
      .query<{ n: string }>(
        "SELECT count(*)::text AS n FROM outbox WHERE published_at IS NULL AND parked_at IS NULL AND id > $1::bigint",
        [outboxFrom],
      )
      .then(
        (r) => Number(r.rows[0].n),
        () => undefined,
      );
    c.lag = await groupLag(admin, groupId).catch(() => undefined);
    c.dlqTopic = await dlqSize().then((x) => (x === undefined ? undefined : x - dlqFrom));
    const now = Date.now();
    const dt = (now - prevT) / 1000;
    const secs = Math.round((now - t0) / 1000);
    const line =
      `[${String(secs).padStart(4)}s] fetched ${fmt(c.fetched)} (${fmt(rate("fetched", dt))}/s)` +
      ` · staged ${fmt(c.staged)} (${fmt(rate("staged", dt))}/s)` +
      ` · published ${fmt(c.published)} (${fmt(rate("published", dt))}/s)` +
      ` · stored ${fmt(c.stored)} (${fmt(rate("stored", dt))}/s)` +
      ` · outbox ${fmt(c.outbox)} · lag ${fmt(c.lag)} · rejected ${fmt(c.rejected)} · dlq +${fmt(c.dlqTopic)}`;
    if (tty) {
      const cols = process.stdout.columns || 0;
      process.stdout.write(`\r\x1b[2K${cols > 20 && line.length >= cols ? line.slice(0, cols - 2) + "…" : line}`);
      lastLineLen = line.length;
    } else say(line);
    prev = { ...c };
    prevT = now;
    if (!o.forever && ingestDone && c.outbox === 0 && c.lag === 0) break;
  }
  if (tty && lastLineLen > 0) process.stdout.write("\n");
  stopping = true;
  // the counters once more: the last line's scrape came before the lag that ended the loop
  const [fr, fp] = await Promise.all([scrape(relay.metricsPort), scrape(processor.metricsPort)]);
  c.published = sample(fr, "pipeline_records_out_total") ?? c.published;
  c.stored = sample(fp, "pipeline_records_out_total") ?? c.stored;
  c.deadLettered = sample(fp, "pipeline_records_failed_total") ?? c.deadLettered;
  const elapsed = (Date.now() - t0) / 1000;
  // this run's users: the pages its ingest stored, from the seed's cursor at the start
  const s = ingest.summary();
  const pagesDone = s ? Number(s.nextPage) - firstPage : Math.ceil((c.fetched ?? 0) / o.batch);
  const ownIds = pagesDone > 0 ? idsOfPages(o.seed, firstPage, pagesDone, o.batch) : [];
  const ownStored = await storedOf(cass, ownIds).catch(() => NaN);

  say(
    interrupted
      ? "pipeline: stopping the workers (SIGTERM; each finishes or gives back its batch)..."
      : "pipeline: stopping the workers...",
  );
  const codes = await Promise.all(workers.map((w) => w.stop()));
  if (ownGroup) await admin.deleteGroups([groupId]).catch(() => undefined);
  await admin.disconnect().catch(() => undefined);
  await Promise.all([pg.end(), cass.shutdown()]).catch(() => undefined);
  await api.close();
  say("");
  const caughtUp = failed
    ? `FAILED: ${failed}`
    : interrupted
      ? "interrupted"
      : "caught up (ingest done, this run's outbox rows published, no consumer lag)";
  say(`pipeline: ${caughtUp}`);
  if ((c.deadLettered ?? 0) > 0)
    say(
      `pipeline: WARNING: the processor dead-lettered ${fmt(c.deadLettered)} messages; reasons in ${processor.logFile} and in the DLQ headers`,
    );
  say(`  fetched    ${fmt((s?.fetched as number) ?? c.fetched)}`);
  say(
    `  staged     ${fmt((s?.staged as number) ?? c.staged)}  (rejected ${fmt((s?.rejected as number) ?? c.rejected)}, in PostgreSQL rejected_records)`,
  );
  const older = (c.published ?? 0) - ((s?.outboxed as number | undefined) ?? c.staged ?? 0);
  say(
    `  published  ${fmt(c.published)}  to Kafka users_created` +
      (older > 0 ? `  (${fmt(older)} of them rows older runs had left pending in the outbox)` : ""),
  );
  say(
    `  stored     ${fmt(ownStored)} of this run's ${fmt(ownIds.length)} users in Cassandra spark_streams.created_users  (the processor wrote ${fmt(c.stored)}; dead-lettered ${fmt(c.deadLettered)}; ${fmt(c.dlqTopic)} new messages in users_created.dlq)`,
  );
  say(
    `  elapsed    ${elapsed.toFixed(1)} s; mean rates: ingest ${fmt(s?.seconds ? (s.fetched as number) / (s.seconds as number) : NaN)}/s,` +
      ` this run end to end ${fmt(ownStored / elapsed)}/s`,
  );
  say(`  worker exit codes: ${workers.map((w, i) => `${w.name}=${codes[i]}`).join(" ")}; logs in ${logDir}/`);
  say(`The services are still running: scripts/services status | scripts/services down`);
  return failed ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`pipeline: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
