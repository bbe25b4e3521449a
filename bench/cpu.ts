/**
 * CPU used by processes, read from /proc: a worker's own (user + system), and the local data
 * services' (PostgreSQL, ZooKeeper, Kafka, the registry, Cassandra, with every process below
 * them: PostgreSQL's backends). A rate moves 3x with the load of a shared machine; the CPU a
 * record costs, client and services together, moves much less, and it is what tells whether
 * three stages can run at the rate of the slowest one on the same 2 cores.
 */
import { readdirSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux as a rule). */
const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces), from field 3 on. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const ticksUs = (t: number) => (t / CLK_TCK) * 1e6;

/** CPU (user + system) used so far by process `pid`, in microseconds; undefined once it is gone. */
export function procCpuUs(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? ticksUs(Number(f[11]) + Number(f[12])) : undefined;
}

export const SERVICES = ["postgres", "zookeeper", "kafka", "schema-registry", "cassandra"];

/**
 * CPU used so far by the services (their pid files under $PIPELINE_HOME/run/<name>/pid) and all
 * their descendants, plus what their reaped children used (cutime + cstime), in microseconds: in
 * all (`us`) and per service (`byName`); `pids`: the services' pids, to tell whether one was
 * restarted between two readings.
 */
export function servicesCpuUs(
  home: string,
  names: string[] = SERVICES,
): { us: number; pids: string; byName: Record<string, number> } {
  const roots = new Map<number, string>();
  for (const n of names) {
    try {
      roots.set(Number(readFileSync(join(home, "run", n, "pid"), "utf8").trim()), n);
    } catch {
      /* not running here */
    }
  }
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    const f = statFields(pid);
    if (!f) continue;
    parent.set(pid, Number(f[1]));
    cpu.set(pid, ticksUs(Number(f[11]) + Number(f[12]) + (roots.has(pid) ? Number(f[13]) + Number(f[14]) : 0)));
  }
  const byName: Record<string, number> = Object.fromEntries([...roots.values()].map((n) => [n, 0]));
  let total = 0;
  for (const [pid, us] of cpu) {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parent.get(p), hops++) {
      const name = roots.get(p);
      if (name !== undefined) {
        total += us;
        byName[name] += us;
        break;
      }
    }
  }
  return { us: total, pids: [...roots.keys()].join(","), byName };
}
