/**
 * `tsx bench/commitlog-ab.ts`: what an acknowledgement after the commitlog's fsync costs the
 * processor. The bench's processor phase (bench/run.ts, BENCH_ONLY=processor) is run on the local
 * single node in cassandraSettings' group mode and in Cassandra's periodic default, alternating
 * (group, periodic, periodic, group by default: drift of the shared machine falls on both), with
 * the node restarted between modes (CASSANDRA_COMMITLOG_SYNC, scripts/services.d/cassandra.sh).
 * Prints each run and the ratios group / periodic of the medians: the processor's steady rate, the
 * bare driver's limit, and the services' CPU per record; last, one line `BENCH_COMMITLOG {...}`.
 * Ends with the node in group mode (its settings). Restarts the SHARED local Cassandra.
 *
 * Env: COMMITLOG_AB_ORDER (group,periodic,periodic,group), BENCH_RECORDS (20000), and whatever
 * bench/run.ts reads.
 */
import { execFileSync, spawn } from "node:child_process";
import { createCassandraClient } from "../runtime/lib/cassandra";
import { loadServicesEnv } from "../tests/support/services";
import { REPO } from "../scripts/pipeline";

type Mode = "group" | "periodic";

interface Figures {
  mode: Mode;
  rate: number;
  limit: number;
  cpuUs: number;
  svcCpuUs: number;
  limitSvcCpuUs: number;
}

const say = (s: string) => process.stdout.write(s + "\n");

async function runningMode(): Promise<string | undefined> {
  const e = loadServicesEnv();
  const c = createCassandraClient({
    CASSANDRA_CONTACT_POINTS: e.CASSANDRA_CONTACT_POINTS.split(","),
    CASSANDRA_LOCAL_DC: e.CASSANDRA_LOCAL_DC,
    CASSANDRA_USER: e.CASSANDRA_USER,
    CASSANDRA_PASSWORD: e.CASSANDRA_PASSWORD,
  });
  try {
    const r = await c.execute("SELECT value FROM system_views.settings WHERE name = 'commitlog_sync'");
    return r.first()?.value as string | undefined;
  } catch {
    return undefined;
  } finally {
    await c.shutdown().catch(() => undefined);
  }
}

/** The node restarted in `mode` unless it already runs in it. */
async function ensureMode(mode: Mode): Promise<void> {
  if ((await runningMode()) === mode) return;
  const services = `${REPO}/scripts/services`;
  execFileSync(services, ["down", "cassandra"], { stdio: "inherit" });
  const env = { ...process.env, CASSANDRA_COMMITLOG_SYNC: mode === "periodic" ? "periodic" : "" };
  execFileSync(services, ["up", "cassandra"], { stdio: "inherit", env });
  const now = await runningMode();
  if (now !== mode) throw new Error(`Cassandra runs with commitlog_sync ${now}, not ${mode}`);
}

/** "steady 720/s, mean 715/s, 89.2 CPU-µs/record" of a line of bench/run.ts's output. */
function figures(out: string, label: string): { rate: number; cpuUs: number } | undefined {
  const line = out.split("\n").find((l) => l.trimStart().startsWith(label));
  const m = line?.match(/steady ([\d,]+)\/s.*?([\d.]+) CPU-µs\/record/);
  return m ? { rate: Number(m[1].replace(/,/g, "")), cpuUs: Number(m[2]) } : undefined;
}

/**
 * One processor phase of the bench: its BENCH line, or (when a diagnostic after them failed: the
 * shared host's load) the processor's and its limit's figures read from its lines.
 */
function benchOnce(): Promise<Omit<Figures, "mode">> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--require", "tsx/cjs", "bench/run.ts"], {
      cwd: REPO,
      env: { ...process.env, BENCH_ONLY: "processor", BENCH_RECORDS: process.env.BENCH_RECORDS ?? "20000" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("BENCH "));
      if (line) {
        const p = (JSON.parse(line.slice("BENCH ".length)) as { processor: Record<string, number> }).processor;
        const svc = { svcCpuUs: p.svc_cpu_us, limitSvcCpuUs: p.limit_svc_cpu_us };
        resolve({ rate: p.rate, limit: p.limit, cpuUs: p.cpu_us, ...svc });
        return;
      }
      const proc = figures(out, "processor:");
      const limit = figures(out, "cassandra limit:");
      if (!proc || !limit) reject(new Error(`bench/run.ts exited ${code} before the processor's figures`));
      else resolve({ rate: proc.rate, limit: limit.rate, cpuUs: proc.cpuUs, svcCpuUs: NaN, limitSvcCpuUs: NaN });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

type Key = keyof Omit<Figures, "mode">;

async function main(): Promise<void> {
  const order = (process.env.COMMITLOG_AB_ORDER ?? "group,periodic,periodic,group").split(",") as Mode[];
  if (order.some((m) => m !== "group" && m !== "periodic")) throw new Error("COMMITLOG_AB_ORDER: group or periodic");
  const runs: Figures[] = [];
  try {
    for (const mode of order) {
      await ensureMode(mode);
      say(`\n=== commitlog_sync ${mode} ===`);
      runs.push({ mode, ...(await benchOnce()) });
    }
  } finally {
    await ensureMode("group");
  }
  const by = (mode: Mode, k: Key) => median(runs.filter((r) => r.mode === mode).map((r) => r[k]));
  say("\n| commitlog_sync | processor /s | limit /s | processor CPU-µs/rec | services CPU-µs/rec | limit's |");
  say("|---|---|---|---|---|---|");
  for (const r of runs) {
    say(`| ${r.mode} | ${r.rate} | ${r.limit} | ${r.cpuUs} | ${r.svcCpuUs} | ${r.limitSvcCpuUs} |`);
  }
  const ratio = (k: Key) => Math.round((by("group", k) / by("periodic", k)) * 100) / 100;
  const ratios = {
    rate: ratio("rate"),
    limit: ratio("limit"),
    cpu_us: ratio("cpuUs"),
    svc_cpu_us: ratio("svcCpuUs"),
    limit_svc_cpu_us: ratio("limitSvcCpuUs"),
  };
  say(
    `\ngroup / periodic (medians): processor rate ${ratios.rate}, limit ${ratios.limit}, ` +
      `services' CPU per record ${ratios.svc_cpu_us}`,
  );
  say(`BENCH_COMMITLOG ${JSON.stringify({ order, runs, ratios })}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
