/**
 * Helpers to run the Spark job (images/spark/job/users_by_country.py) against the local Spark
 * master with spark-submit, and to read its aggregates from Cassandra. Used by the Spark
 * integration test, the end-to-end test and bench/spark-vs-processor.ts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { auth, Client, types } from "cassandra-driver";
import { AGGREGATES_TABLE, KEYSPACE } from "../../../runtime/contracts/names";
import type { ServicesEnv } from "../../support/services";

export const REPO = resolve(__dirname, "..", "..", "..");
export const JOB = join(REPO, "images", "spark", "job", "users_by_country.py");
export const AVSC = join(REPO, "runtime", "contracts", "user-created.avsc");

/**
 * Where the job keeps its progress inside SPARK_CHECKPOINT_DIR: a subdirectory named by the job's
 * CHECKPOINT_LAYOUT (read from the job, so a new layout needs no change here).
 */
export function jobCheckpoint(checkpointDir: string): string {
  const layout = /^CHECKPOINT_LAYOUT = "([^"]+)"/m.exec(readFileSync(JOB, "utf8"))?.[1];
  if (!layout)
    throw new Error(`${JOB}: no CHECKPOINT_LAYOUT = "..." line; the tests read the checkpoint's layout from it`);
  return join(checkpointDir, layout);
}

/** services.env keys the Spark job needs. */
export const SPARK_KEYS = [
  "KAFKA_BROKERS",
  "CASSANDRA_CONTACT_POINTS",
  "CASSANDRA_LOCAL_DC",
  "SPARK_MASTER_URL",
  "SPARK_HOME",
  "SPARK_PYTHON",
  "SPARK_CONNECTOR_JARS",
] as const;

export interface SparkJobOptions {
  topic: string;
  checkpointDir?: string;
  /** Process what the topic holds, then exit (trigger availableNow). */
  availableNow?: boolean;
  /** More environment for the job (SPARK_TRIGGER, SPARK_WATERMARK, ...). */
  env?: Record<string, string>;
}

export interface SparkJob {
  proc: ChildProcess;
  /** Exit code of spark-submit. */
  exited: Promise<number | null>;
  output: () => string;
  /** SIGTERM to the whole process group (spark-submit, its JVM, the Python driver); waits. */
  stop: () => Promise<void>;
}

export function startSparkJob(env: ServicesEnv, o: SparkJobOptions): SparkJob {
  const ownCheckpoint = !o.checkpointDir;
  const checkpoint = o.checkpointDir ?? mkdtempSync(join(tmpdir(), "spark-ckpt-"));
  const args = [
    "--master",
    env.SPARK_MASTER_URL,
    "--name",
    `users_by_country:${o.topic}`,
    "--jars",
    env.SPARK_CONNECTOR_JARS,
    "--conf",
    "spark.driver.memory=1g",
    "--conf",
    "spark.executor.memory=1g",
    "--conf",
    "spark.cores.max=1",
    "--conf",
    "spark.ui.enabled=false",
    "--conf",
    "spark.driver.host=127.0.0.1",
    "--conf",
    "spark.driver.bindAddress=127.0.0.1",
    JOB,
    ...(o.availableNow ? ["--available-now"] : []),
  ];
  const proc = spawn(join(env.SPARK_HOME, "bin", "spark-submit"), args, {
    cwd: REPO,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...env,
      SPARK_LOCAL_IP: "127.0.0.1",
      PYSPARK_PYTHON: env.SPARK_PYTHON,
      PYSPARK_DRIVER_PYTHON: env.SPARK_PYTHON,
      USER_CREATED_AVSC: AVSC,
      SPARK_TOPIC: o.topic,
      SPARK_CHECKPOINT_DIR: checkpoint,
      SPARK_TRIGGER: "2 seconds",
      ...o.env,
    },
  });
  let out = "";
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  const exited = new Promise<number | null>((res) =>
    proc.on("exit", (code) => {
      if (ownCheckpoint) rmSync(checkpoint, { recursive: true, force: true });
      res(code);
    }),
  );
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(-proc.pid!, "SIGTERM");
    } catch {
      /* gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, 30_000);
    await exited;
    clearTimeout(t);
  };
  return { proc, exited, output: () => out, stop };
}

export function cassandraClient(env: ServicesEnv): Client {
  return new Client({
    contactPoints: env.CASSANDRA_CONTACT_POINTS.split(","),
    localDataCenter: env.CASSANDRA_LOCAL_DC,
    authProvider: env.CASSANDRA_USER
      ? new auth.PlainTextAuthProvider(env.CASSANDRA_USER, env.CASSANDRA_PASSWORD ?? "")
      : undefined,
  });
}

/** "country|gender|window start ISO" -> users, for the given countries. */
export async function readAggregates(client: Client, countries: string[]): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  try {
    const rs = await client.execute(
      `SELECT country, window_start, gender, users FROM ${KEYSPACE}.${AGGREGATES_TABLE} WHERE country IN ?`,
      [countries],
      { prepare: true },
    );
    for (const r of rs.rows) {
      m.set(
        aggKey(r.country as string, r.gender as string, (r.window_start as Date).getTime()),
        Number(r.users as types.Long),
      );
    }
  } catch (e) {
    // The job creates the table at start; before that, there is nothing to read.
    if (!/unconfigured table|does not exist/i.test(String(e))) throw e;
  }
  return m;
}

export function aggKey(country: string, gender: string, windowStartMs: number): string {
  return `${country}|${gender}|${new Date(windowStartMs).toISOString()}`;
}

export function sameMap(a: Map<string, number>, b: Map<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  onTimeout?: () => string,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${onTimeout ? `\n${onTimeout()}` : ""}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
