/**
 * Worker entry point: `main <ingest|relay|processor|api|lag> [--once]`, or `main audit ...`.
 *   ingest --once     INGEST_BATCHES pages, then prints a JSON summary; without: loop
 *   relay --once      publish until the outbox is drained; without: poll forever
 *   processor --once  consume until the group has no lag; without: forever
 *   api               the randomuser-compatible API on API_PORT
 *   lag               consumer groups' lag on /metrics (kafka_exporter's names), read every LAG_INTERVAL_MS
 *   audit [--seed S | --since T [--until T]] [--redrive]   staged users against created_users
 *   dlq-replay [--reason REGEX] [--since ISO] [--until ISO] [--dry-run]   dead letters back to users_created
 * Exit codes: 0 done, 1 failure, 2 usage or configuration error.
 */
import {
  apiSchema,
  ConfigError,
  ingestSchema,
  lagSchema,
  loadConfig,
  processorSchema,
  relaySchema,
} from "./lib/config";
import { startMetricsServer } from "./lib/http-server";
import { createLogger, type Logger } from "./lib/logger";
import { onShutdownSignal } from "./lib/shutdown";
import { startApiServer } from "./api/server";
import { runIngestLoop, runIngestOnce } from "./ingest/ingest";
import { pushRunMetrics } from "./lib/push-metrics";
import { metrics } from "./lib/metrics";
import { startRelay } from "./relay/relay";
import { startProcessor } from "./processor/processor";
import { runLagExporter } from "./lag/lag-exporter";
import { AUDIT_USAGE, auditCommand } from "./audit/command";
import { DLQ_REPLAY_USAGE, dlqReplayCommand } from "./processor/dlq-replay";

const USAGE = `usage: main <ingest|relay|processor|api|lag> [--once]\n${AUDIT_USAGE}\n${DLQ_REPLAY_USAGE}`;
const COMMANDS = ["ingest", "relay", "processor", "api", "lag", "audit", "dlq-replay"] as const;
type Command = (typeof COMMANDS)[number];

export function parseArgs(argv: string[]): { command: Command; once: boolean; rest?: string[] } | { error: string } {
  // audit parses its own options (runtime/audit/audit.ts)
  if (argv[0] === "audit") return { command: "audit", once: false, rest: argv.slice(1) };
  if (argv[0] === "dlq-replay") return { command: "dlq-replay", once: false, rest: argv.slice(1) };
  const args = argv.filter((a) => a !== "--once");
  const once = argv.includes("--once");
  if (args.length !== 1)
    return { error: args.length === 0 ? "no command given" : `unexpected arguments: ${args.slice(1).join(" ")}` };
  const unknownFlag = args.find((a) => a.startsWith("-"));
  if (unknownFlag) return { error: `unknown option ${unknownFlag}` };
  if (!(COMMANDS as readonly string[]).includes(args[0])) return { error: `unknown command "${args[0]}"` };
  return { command: args[0] as Command, once };
}

/** Serves a worker's /metrics while it works; its summary is printed as one JSON line when asked. */
async function serveMetricsWhile(
  c: { METRICS_PORT: number; LISTEN_HOST: string },
  log: Logger,
  work: () => Promise<unknown>,
  printSummary: boolean,
): Promise<number> {
  const ms = await startMetricsServer(c.METRICS_PORT, undefined, c.LISTEN_HOST);
  log.info({ metricsPort: ms.port }, "metrics listening");
  try {
    const summary = await work();
    if (printSummary) process.stdout.write(JSON.stringify(summary) + "\n");
    return 0;
  } finally {
    await ms.close();
  }
}

/** Where the entry point reads its settings and writes what the user did wrong. */
export interface MainIo {
  env: NodeJS.ProcessEnv;
  stderr: (text: string) => void;
}

const PROCESS_IO: MainIo = { env: process.env, stderr: (text) => process.stderr.write(text) };

/** The entry point: the exit code of `main <command> ...` (2: usage or configuration). */
export async function main(argv: string[], io: MainIo = PROCESS_IO): Promise<number> {
  const parsed = parseArgs(argv);
  if ("error" in parsed) {
    io.stderr(`${parsed.error}\n${USAGE}\n`);
    return 2;
  }
  return run(parsed.command, parsed.once, parsed.rest ?? [], io);
}

async function run(command: Command, once: boolean, rest: string[], io: MainIo): Promise<number> {
  const log = createLogger(command);
  const { signal, dispose } = onShutdownSignal(log);
  try {
    switch (command) {
      case "api": {
        const c = loadConfig(apiSchema, io.env);
        const api = await startApiServer({
          port: c.API_PORT,
          host: c.LISTEN_HOST,
          log,
          faults: {
            errorRate: c.API_FAULT_ERROR_RATE,
            latencyMs: c.API_FAULT_LATENCY_MS,
            malformedRate: c.API_FAULT_MALFORMED_RATE,
          },
        });
        log.info({ url: api.url }, "api listening");
        await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
        await api.close();
        return 0;
      }
      case "ingest": {
        const c = loadConfig(ingestSchema, io.env);
        if (!once) return await serveMetricsWhile(c, log, () => runIngestLoop({ config: c, log, signal }), true);
        return await serveMetricsWhile(
          c,
          log,
          async () => {
            const summary = await runIngestOnce({ config: c, log, signal });
            if (c.PUSHGATEWAY_URL)
              await pushRunMetrics(
                metrics().registry,
                { url: c.PUSHGATEWAY_URL, job: "ingest", grouping: { seed: c.INGEST_SEED } },
                log,
              );
            return summary;
          },
          true,
        );
      }
      case "relay": {
        const c = loadConfig(relaySchema, io.env);
        return await serveMetricsWhile(
          c,
          log,
          () => startRelay({ config: c, log, signal, untilDrained: once }).done,
          once,
        );
      }
      case "processor": {
        const c = loadConfig(processorSchema, io.env);
        return await serveMetricsWhile(
          c,
          log,
          () => startProcessor({ config: c, log, signal, untilCaughtUp: once }).done,
          once,
        );
      }
      case "lag": {
        const c = loadConfig(lagSchema, io.env);
        return await serveMetricsWhile(
          c,
          log,
          () => runLagExporter({ config: c, log, signal, rounds: once ? 1 : undefined }),
          once,
        );
      }
      case "audit":
        return await auditCommand(rest, log);
      case "dlq-replay":
        return await dlqReplayCommand(rest, log);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      io.stderr(`${command}: ${e.message}\n`);
      return 2;
    }
    log.fatal({ err: e }, `${command} failed`);
    return 1;
  } finally {
    dispose();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      // give pino a tick to flush, then leave even if a client left a handle open
      setTimeout(() => process.exit(code), 50).unref();
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(1);
    },
  );
}
