/** Run the Airflow CLI of the local services with the very configuration the scheduler uses. */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseEnvFile, type ServicesEnv } from "../../support/services";

export const AIRFLOW_KEYS = ["AIRFLOW_BIN", "AIRFLOW_ENV_FILE", "PG_HOST", "PG_DATABASE", "PG_USER"] as const;

export interface CliResult {
  code: number | null;
  output: string;
  ms: number;
}

/** `airflow <args>` with the Airflow config of services.env plus `extra` (the task inherits it). */
export function airflow(
  env: ServicesEnv,
  args: string[],
  extra: Record<string, string> = {},
  timeoutMs = 300_000,
): Promise<CliResult> {
  return run(env, env.AIRFLOW_BIN, args, extra, timeoutMs);
}

/** Python of Airflow's venv, same configuration: for asking Airflow's own objects. */
export function airflowPython(env: ServicesEnv, code: string, extra: Record<string, string> = {}): Promise<CliResult> {
  return run(env, join(dirname(env.AIRFLOW_BIN), "python"), ["-c", code], extra, 120_000);
}

function run(
  env: ServicesEnv,
  bin: string,
  args: string[],
  extra: Record<string, string>,
  timeoutMs: number,
): Promise<CliResult> {
  const cfg = parseEnvFile(readFileSync(env.AIRFLOW_ENV_FILE, "utf8"));
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, {
      env: { ...process.env, ...cfg, ...extra },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    p.stdout.on("data", (b: Buffer) => (output += b.toString()));
    p.stderr.on("data", (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    p.on("error", reject);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output, ms: Date.now() - t0 });
    });
  });
}

/** The ingest summary the DAG's task echoes ("ingest summary: {...}"). */
export function ingestSummary(output: string): Record<string, unknown> | undefined {
  const m = [...output.matchAll(/ingest summary: (\{.*\})/g)].pop();
  return m ? (JSON.parse(m[1]) as Record<string, unknown>) : undefined;
}
