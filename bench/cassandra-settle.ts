/**
 * Cassandra settled between the bench's phases: its memtables flushed and no flush or compaction
 * running. Without it a phase pays for the flush of the rows of the phase before it (the bench's
 * Cassandra CPU per record read 118 to 292 µs for the same limit run before and after the
 * processor in run mwxspzo1), and the limit's rows, in tables dropped before they are flushed
 * (auto_snapshot is off), never pay for a flush while the processor's do.
 *
 * The flush is nodetool's, run from the cassandra-all jars that scripts/services downloaded (there
 * is no nodetool script: the service runs from Maven jars), over JMX on loopback (port 7199, the
 * single node's); the wait reads system_views.thread_pools over CQL.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "cassandra-driver";

const JMX_PORT = 7199;
/** What Cassandra's own tool scripts give the JVM (jvm11-clients.options) so its classes load on Java 17. */
const JVM_OPENS = [
  "--add-exports",
  "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-opens",
  "java.base/sun.nio.ch=ALL-UNNAMED",
  "--add-exports",
  "java.base/jdk.internal.ref=ALL-UNNAMED",
  "--add-opens",
  "java.base/java.nio=ALL-UNNAMED",
];
const BUSY_POOLS = ["CompactionExecutor", "MemtableFlushWriter", "MemtablePostFlush", "PerDiskMemtableFlushWriter_0"];

function cassandraLib(home: string): string {
  const root = join(home, "downloads", "cassandra");
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "lib"))) : [];
  if (versions.length === 0)
    throw new Error(`no Cassandra jars under ${root}: run scripts/services up cassandra first`);
  return join(root, versions.sort().at(-1)!, "lib");
}

/** nodetool <args> against the local node; throws with its last lines when it fails. */
export function nodetool(home: string, ...args: string[]): void {
  const toolHome = join(home, "run", "bench", "nodetool-home"); // NodeTool writes its history under user.home
  mkdirSync(toolHome, { recursive: true });
  const argv = [
    `-Duser.home=${toolHome}`,
    ...JVM_OPENS,
    "-cp",
    `${cassandraLib(home)}/*`,
    "org.apache.cassandra.tools.NodeTool",
    "-h",
    "127.0.0.1",
    "-p",
    String(JMX_PORT),
    ...args,
  ];
  const r = spawnSync("java", argv, { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) {
    const why = (r.stderr || r.stdout || String(r.error ?? ""))
      .split("\n")
      .filter((l) => !/ DEBUG |^\s+at /.test(l))
      .slice(-5)
      .join("\n");
    throw new Error(`nodetool ${args[0]} failed (exit ${r.status}): ${why}`);
  }
}

/**
 * The sink table's automatic compaction paused for the bench (resumed by the returned function;
 * a Cassandra restart resumes it too: the pause is not kept in the schema). The limit writes a
 * fresh table per level, dropped before it ever compacts; the sink, written by every test and
 * bench on this machine, compacts its small SSTables now and then, and which phase paid for that
 * was chance (a 54 MB compaction in the processor's run mwxsz7d0). With it paused, every phase pays
 * for writing and flushing its rows, and none for compaction.
 */
export function pauseCompaction(home: string, keyspace: string, table: string): () => void {
  nodetool(home, "disableautocompaction", keyspace, table);
  return () => nodetool(home, "enableautocompaction", keyspace, table);
}

/** Wait until no flush or compaction is active or pending (at most `timeoutMs`); the ms waited. */
export async function cassandraQuiet(client: Client, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const rs = await client.execute("SELECT name, active_tasks, pending_tasks FROM system_views.thread_pools");
    const busy = rs.rows.filter(
      (r) => BUSY_POOLS.includes(r.name as string) && Number(r.active_tasks) + Number(r.pending_tasks) > 0,
    );
    if (busy.length === 0) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`Cassandra still busy after ${timeoutMs} ms: ${busy.map((r) => r.name).join(", ")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Flush, then wait for quiet: what a phase leaves behind is paid inside that phase. */
export async function settleCassandra(client: Client, home: string): Promise<number> {
  const t0 = Date.now();
  nodetool(home, "flush"); // every memtable written to disk
  await cassandraQuiet(client);
  return Date.now() - t0;
}
