/**
 * The local services' environment for integration tests: the KEY=VALUE lines that
 * `scripts/services up` writes to $PIPELINE_HOME/run/services.env (PG_*, KAFKA_BROKERS,
 * SCHEMA_REGISTRY_URL, CASSANDRA_*, AIRFLOW_DB_URL), with the same names as the workers' env vars.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type ServicesEnv = Record<string, string>;

export function pipelineHome(): string {
  return process.env.PIPELINE_HOME || join(homedir(), ".cache", "realtime-pipeline");
}

/** PIPELINE_SERVICES_ENV names another set's file (the replicated set of `scripts/services --nodes 3`: tests/ha). */
export function servicesEnvPath(): string {
  return process.env.PIPELINE_SERVICES_ENV || join(pipelineHome(), "run", "services.env");
}

/** Parses KEY=VALUE lines; blank lines and # comments are skipped; the value is taken verbatim. */
export function parseEnvFile(text: string): ServicesEnv {
  const env: ServicesEnv = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`services.env: not KEY=VALUE: ${line}`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/**
 * Reads services.env. Throws a clear error when it is missing, or when one of `required` keys is
 * absent (that service is not up): run scripts/services up first.
 */
export function loadServicesEnv(required: readonly string[] = []): ServicesEnv {
  const path = servicesEnvPath();
  if (!existsSync(path)) {
    throw new Error(`${path} not found: run scripts/services up first`);
  }
  const env = parseEnvFile(readFileSync(path, "utf8"));
  const missing = required.filter((k) => !env[k]);
  if (missing.length > 0) {
    throw new Error(`${path} lacks ${missing.join(", ")}: that service is not up; run scripts/services up first`);
  }
  return env;
}
