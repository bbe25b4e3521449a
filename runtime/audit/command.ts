/** The `audit` worker command: config, clients, the report on stdout (text, then one JSON line). */
import { createCassandraClient } from "../lib/cassandra";
import { loadConfig } from "../lib/config";
import type { Logger } from "../lib/logger";
import { createPgPool } from "../lib/pg";
import { auditSchema, formatReport, parseAuditArgs, runAudit } from "./audit";

export const AUDIT_USAGE = "usage: main audit [--seed S | --since T [--until T]] [--redrive]";

/** Exit code: 0 audited (whatever it found), 2 usage or configuration error; throws on a failure. */
export async function auditCommand(argv: string[], log: Logger): Promise<number> {
  const c = loadConfig(auditSchema);
  const args = parseAuditArgs(argv, c.INGEST_BATCH_SIZE);
  if ("error" in args) {
    process.stderr.write(`audit: ${args.error}\n${AUDIT_USAGE}\n`);
    return 2;
  }
  const pg = createPgPool(c, 2, log);
  const cass = createCassandraClient(c);
  try {
    await cass.connect();
    const report = await runAudit(pg, cass, { ...args, maxIds: c.AUDIT_MAX_IDS });
    log.info({ ...report, ids: report.ids.length }, "audit done");
    process.stdout.write(`${formatReport(report)}\n${JSON.stringify(report)}\n`);
    return 0;
  } finally {
    await Promise.all([pg.end().catch(() => undefined), cass.shutdown().catch(() => undefined)]);
  }
}
