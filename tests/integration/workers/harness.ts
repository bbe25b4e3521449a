/**
 * Helpers of the workers' integration tests: the services' env, worker child processes
 * (`tsx runtime/main.ts ...`, cleaned up after each test), and readers of PostgreSQL, Kafka and
 * Cassandra that look only at the ids a test made (other data may share the services).
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { Pool } from "pg";
import type { Client as CassandraClient } from "cassandra-driver";
import { generatePage } from "../../../runtime/api/generate";
import { normalizeUser } from "../../../runtime/ingest/normalize";
import type { UserCreated } from "../../../runtime/contracts/user-created";
import { USERS_TOPIC } from "../../../runtime/contracts/names";
import { PG_SCHEMA_SQL } from "../../../runtime/lib/pg-schema";
import { createCassandraClient } from "../../../runtime/lib/cassandra";
import { loadServicesEnv } from "../../support/services";

export const ROOT = path.resolve(__dirname, "../../..");

export const REQUIRED = [
  "PG_HOST",
  "PG_PORT",
  "PG_DATABASE",
  "PG_USER",
  "PG_PASSWORD",
  "KAFKA_BROKERS",
  "SCHEMA_REGISTRY_URL",
  "CASSANDRA_CONTACT_POINTS",
  "CASSANDRA_LOCAL_DC",
] as const;

export function servicesEnv(): Record<string, string> {
  return loadServicesEnv(REQUIRED);
}

/** services.env without the check that every service is up (empty if the file is missing). */
function currentServicesEnv(): Record<string, string> {
  try {
    return loadServicesEnv();
  } catch {
    return {};
  }
}

export const uniq = (prefix: string) =>
  `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

export interface Worker {
  proc: ChildProcess;
  name: string;
  output: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  metricsPort: number;
  metric(name: string, labels?: string): Promise<number>;
}

const running = new Set<Worker>();
// never leave workers behind, even when mocha itself is stopped
process.on("exit", () => {
  for (const w of running) w.proc.kill("SIGKILL");
});
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.once(sig, () => {
    for (const w of running) w.proc.kill("SIGKILL");
    process.exit(130);
  });
}

/**
 * Spawn the worker entry point (runtime/main.ts through tsx's require hook) with the services' env
 * plus `env`. One process, as `node dist/runtime/main.js` in the images: signals reach the worker
 * itself. (The `tsx` launcher is a parent process that relays signals and SIGKILLs a child that
 * has not acknowledged one within 30 ms: under load that would turn a SIGTERM into a SIGKILL.)
 * `entry`: a main.js compiled beforehand (compileRuntime), for suites that time a worker's start.
 */
export async function spawnWorker(args: string[], env: Record<string, string>, entry?: string): Promise<Worker> {
  const metricsPort = await freePort();
  const proc = spawn(process.execPath, [...(entry ? [entry] : ["--require", "tsx/cjs", "runtime/main.ts"]), ...args], {
    cwd: ROOT,
    // services.env as it is now, under what the caller passes: a caller that captured the
    // services' env before restarting one of them (the fault suite) still starts a worker
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      LOG_LEVEL: "info",
      ...currentServicesEnv(),
      METRICS_PORT: String(metricsPort),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let stdout = "";
  proc.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("exit", (code, signal) => {
      running.delete(w);
      resolve({ code, signal });
    }),
  );
  const w: Worker = {
    proc,
    name: args.join(" "),
    output: () => out,
    stdout: () => stdout,
    exited,
    metricsPort,
    async metric(name, labels = "") {
      try {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith(name) && l.includes(labels) && !l.startsWith("#"));
        return line ? Number(line.split(" ").pop()) : 0;
      } catch {
        return -1;
      }
    },
  };
  running.add(w);
  return w;
}

/**
 * The runtime transpiled once to JavaScript, as the images run it (`node dist/runtime/main.js`),
 * so a worker's start is not also tsx's loader compiling ~40 modules on every start (1–3 s on a
 * loaded 2-core host). esbuild is the transform tsx itself applies: the code run is the same.
 * Written under node_modules/.cache so the modules resolve the repo's node_modules. Returns main.js.
 */
export async function compileRuntime(): Promise<string> {
  const { build } = await import("esbuild");
  const fs = await import("node:fs");
  const out = path.join(ROOT, "node_modules", ".cache", "runtime-js");
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) files.push(f);
    }
  };
  walk(path.join(ROOT, "runtime"));
  fs.rmSync(out, { recursive: true, force: true });
  await build({
    entryPoints: files,
    outdir: path.join(out, "runtime"),
    outbase: path.join(ROOT, "runtime"),
    format: "cjs",
    platform: "node",
    target: "node20",
    sourcemap: "inline",
    logLevel: "warning",
  });
  fs.copyFileSync(
    path.join(ROOT, "runtime/contracts/user-created.avsc"),
    path.join(out, "runtime/contracts/user-created.avsc"),
  );
  return path.join(out, "runtime", "main.js");
}

/** Run a worker to its end; fail with its output if it does not exit 0 in time. */
export async function runWorker(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 240_000,
): Promise<{ summary: unknown; output: string }> {
  const w = await spawnWorker(args, env);
  const t = setTimeout(() => w.proc.kill("SIGKILL"), timeoutMs);
  const { code, signal } = await w.exited;
  clearTimeout(t);
  if (code !== 0) throw new Error(`${w.name} exited ${code ?? signal}:\n${w.output().slice(-4000)}`);
  const last = w
    .stdout()
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{") && !l.includes('"level"'))
    .pop();
  return { summary: last ? JSON.parse(last) : undefined, output: w.output() };
}

/** Kill every worker a test left running. */
export async function killAll(): Promise<void> {
  const all = [...running];
  for (const w of all) w.proc.kill("SIGKILL");
  await Promise.all(all.map((w) => w.exited));
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 100,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function pgPool(): Pool {
  const e = servicesEnv();
  return new Pool({
    host: e.PG_HOST,
    port: Number(e.PG_PORT),
    database: e.PG_DATABASE,
    user: e.PG_USER,
    password: e.PG_PASSWORD,
    max: 3,
  });
}

/**
 * A PostgreSQL schema of its own, with the workers' tables (search_path): `pg` works in it, `drop()`
 * removes it. Tests that count rows need no other relay or ingest on these services in their way.
 */
export async function scratchSchema(
  prefix: string,
  max = 4,
): Promise<{ schema: string; pg: Pool; drop: () => Promise<void> }> {
  const e = servicesEnv();
  const conf = {
    host: e.PG_HOST,
    port: Number(e.PG_PORT),
    database: e.PG_DATABASE,
    user: e.PG_USER,
    password: e.PG_PASSWORD,
  };
  const schema = uniq(prefix).replace(/-/g, "_");
  const admin = new Pool({ ...conf, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const pg = new Pool({ ...conf, max, options: `-c search_path=${schema}` });
  await pg.query(PG_SCHEMA_SQL);
  return {
    schema,
    pg,
    drop: async () => {
      await pg.end();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}

export function cassandra(): CassandraClient {
  const e = servicesEnv();
  return createCassandraClient({
    CASSANDRA_CONTACT_POINTS: e.CASSANDRA_CONTACT_POINTS.split(","),
    CASSANDRA_LOCAL_DC: e.CASSANDRA_LOCAL_DC,
    CASSANDRA_USER: e.CASSANDRA_USER,
    CASSANDRA_PASSWORD: e.CASSANDRA_PASSWORD,
  });
}

export function kafka(): Kafka {
  return new Kafka({
    clientId: "it-workers",
    brokers: servicesEnv().KAFKA_BROKERS.split(","),
    logLevel: logLevel.NOTHING,
  });
}

/** The users the API serves for a seed, pages 1..pages, normalized (fetched_at left 0). */
export function expectedUsers(
  seed: string,
  pages: number,
  perPage: number,
  malformedRate = 0,
): Map<string, UserCreated> {
  const m = new Map<string, UserCreated>();
  for (let p = 1; p <= pages; p++) {
    for (const raw of generatePage(seed, p, perPage, malformedRate).results) {
      const n = normalizeUser(raw, 0);
      if (n.ok) m.set(n.user.id, n.user);
    }
  }
  return m;
}

export interface CassandraUser extends Omit<UserCreated, "dob" | "registered_date" | "fetched_at"> {
  dob: number;
  registered_date: number;
  fetched_at: number;
}

/** Rows of spark_streams.created_users for these ids (id → row), read in chunks. */
export async function cassandraUsers(c: CassandraClient, ids: string[]): Promise<Map<string, CassandraUser>> {
  const out = new Map<string, CassandraUser>();
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 100) chunks.push(ids.slice(i, i + 100));
  for (let i = 0; i < chunks.length; i += 8) {
    await Promise.all(
      chunks.slice(i, i + 8).map(async (chunk) => {
        const r = await c.execute("SELECT * FROM spark_streams.created_users WHERE id IN ?", [chunk], {
          prepare: true,
          fetchSize: 1000,
        });
        for (const row of r.rows) {
          const id = row.id.toString() as string;
          out.set(id, {
            id,
            first_name: row.first_name,
            last_name: row.last_name,
            gender: row.gender,
            address: row.address,
            country: row.country,
            post_code: row.post_code,
            email: row.email,
            username: row.username,
            dob: (row.dob as Date).getTime(),
            registered_date: (row.registered_date as Date).getTime(),
            phone: row.phone,
            picture: row.picture,
            fetched_at: (row.fetched_at as Date).getTime(),
          });
        }
      }),
    );
  }
  return out;
}

/** High watermarks of a topic, partition → offset. */
export async function topicEnds(admin: Admin, topic = USERS_TOPIC): Promise<Map<number, string>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
}

export interface RawMessage {
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Every message of `topic` between two sets of watermarks (by partition), read with assign-like seeks. */
export async function readRange(
  k: Kafka,
  topic: string,
  from: Map<number, string>,
  to: Map<number, string>,
): Promise<RawMessage[]> {
  const want = [...to.entries()].filter(([p, end]) => BigInt(end) > BigInt(from.get(p) ?? "0"));
  if (want.length === 0) return [];
  const total = want.reduce((s, [p, end]) => s + Number(BigInt(end) - BigInt(from.get(p) ?? "0")), 0);
  const consumer = k.consumer({ groupId: uniq("it-reader"), maxBytes: 32 << 20 });
  const msgs: RawMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveDone = r));
    const endOf = new Map(want);
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = endOf.get(batch.partition);
        if (!end) return;
        for (const m of batch.messages) {
          if (BigInt(m.offset) < BigInt(from.get(batch.partition) ?? "0") || BigInt(m.offset) >= BigInt(end)) continue;
          const headers: Record<string, string> = {};
          for (const [hk, hv] of Object.entries(m.headers ?? {})) headers[hk] = hv?.toString() ?? "";
          msgs.push({
            partition: batch.partition,
            offset: m.offset,
            timestamp: m.timestamp,
            key: m.key?.toString() ?? null,
            value: m.value,
            headers,
          });
        }
        if (msgs.length >= total) resolveDone();
      },
    });
    for (const [p] of want) consumer.seek({ topic, partition: p, offset: from.get(p) ?? "0" });
    await Promise.race([
      done,
      new Promise((_r, rej) =>
        setTimeout(() => rej(new Error(`read ${msgs.length} of ${total} messages of ${topic}`)), 120_000),
      ),
    ]);
  } finally {
    await consumer.disconnect();
  }
  return msgs;
}

/** Until `group` has committed past the topic's end as it is now (it has read all there is). */
export async function groupCaughtUp(admin: Admin, group: string, deadlineMs = 900_000): Promise<void> {
  const ends = await topicEnds(admin);
  await waitFor(
    "the processor group caught up with the topic",
    async () => {
      const off = await admin.fetchOffsets({ groupId: group, topics: [USERS_TOPIC] }).catch(() => undefined);
      if (!off) return false;
      const done = new Map(off[0].partitions.map((p) => [p.partition, BigInt(p.offset)]));
      return [...ends].every(([p, end]) => (done.get(p) ?? -1n) >= BigInt(end));
    },
    deadlineMs,
    1000,
  );
}

/**
 * Which staged ids are not in Cassandra although the processor group has read everything published
 * so far (a stream's "records lost"). Ids seen once are remembered, so each check reads only the new.
 */
export class StoredIds {
  private readonly verified = new Set<string>();
  constructor(
    private readonly cass: CassandraClient,
    private readonly admin: Admin,
    private readonly group: string,
  ) {}

  async missing(ids: string[], deadlineMs = 180_000): Promise<string[]> {
    await groupCaughtUp(this.admin, this.group).catch(() => undefined);
    const t0 = Date.now();
    let missing = ids.filter((id) => !this.verified.has(id));
    while (missing.length > 0) {
      const got = await cassandraUsers(this.cass, missing).catch(() => new Map<string, unknown>());
      for (const id of got.keys()) this.verified.add(id);
      missing = missing.filter((id) => !this.verified.has(id));
      if (missing.length === 0 || Date.now() - t0 > deadlineMs) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return missing;
  }
}

/**
 * Keeps a suite's named workers running as a kubelet would. An exit nobody asked for (not kill(),
 * not stop()) is logged with the worker's last output, counted against the fault under way (the
 * suite's row, from `underWay`) and followed by a new start 1 s later.
 */
export class Supervisor<N extends string> {
  /** The running worker of each name (the newest start). */
  readonly workers = {} as Record<N, Worker>;
  /** Every worker started, in order: their output, for a suite's logs. */
  readonly started: Worker[] = [];
  /** One entry per exit nobody asked for. */
  readonly exitLog: string[] = [];
  private readonly expected = new Set<Worker>();
  private stopping = false;

  constructor(
    private readonly launch: (name: N) => Promise<Worker>,
    /** The suite's fault under way (its row), if any: an exit nobody asked for counts against it. */
    private readonly underWay: () => { fault: string; exits: number } | undefined,
  ) {}

  async start(name: N): Promise<Worker> {
    const wk = await this.launch(name);
    this.workers[name] = wk;
    this.started.push(wk);
    void wk.exited.then(async ({ code, signal }) => {
      if (this.expected.has(wk) || this.stopping) return;
      const fault = this.underWay();
      if (fault) fault.exits++;
      this.exitLog.push(
        `${name} exited by itself (${code ?? signal}) during ${fault?.fault ?? "setup"}:\n${wk.output().slice(-1500)}`,
      );
      await new Promise((r) => setTimeout(r, 1000));
      if (!this.stopping) await this.start(name);
    });
    return wk;
  }

  /** Signals the running worker of that name; its exit is expected (not counted, not restarted). */
  async kill(name: N, sig: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const wk = this.workers[name];
    this.expected.add(wk);
    wk.proc.kill(sig);
    await wk.exited;
  }

  /** Ends supervision: every running worker is SIGKILLed and nothing is started again. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const name of Object.keys(this.workers) as N[]) await this.kill(name);
  }
}
