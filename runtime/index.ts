/** Programmatic entry points of the workers (no side effects on import). */
export { startApiServer, type ApiServer, type ApiServerOptions } from "./api/server";
export { generatePage, generateUser } from "./api/generate";
export type { Faults, FaultsInput } from "./api/faults";
export { runIngestOnce, runIngestLoop, type IngestSummary, type IngestOptions } from "./ingest/ingest";
export { startRelay, type RelayHandle, type RelaySummary, type RelayOptions } from "./relay/relay";
export {
  startProcessor,
  groupLag,
  type ProcessorHandle,
  type ProcessorSummary,
  type ProcessorOptions,
} from "./processor/processor";
export { loadConfig, ConfigError, ingestSchema, relaySchema, processorSchema, apiSchema } from "./lib/config";
export { createLogger } from "./lib/logger";
export { metrics } from "./lib/metrics";
export { startMetricsServer } from "./lib/http-server";
export { migrate } from "./lib/pg-schema";
export { normalizeUser } from "./ingest/normalize";
