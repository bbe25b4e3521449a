/**
 * Environment configuration, validated with zod at start. A bad environment yields one line per
 * bad variable, naming the variable, what is wrong and how to fix it.
 */
import { z } from "zod";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** A required non-empty string. */
export const str = (fix: string) => z.string({ required_error: `is not set: ${fix}` }).min(1, `is empty: ${fix}`);

/** An integer within [min, max], from its decimal text; `def` when unset or empty. */
export const int = (min: number, max: number, def?: number) => {
  const base = z
    .string()
    .regex(/^-?\d+$/, `must be an integer between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`));
  return def === undefined
    ? z.string({ required_error: `is not set: give an integer between ${min} and ${max}` }).pipe(base)
    : z.preprocess((v) => (v === undefined || v === "" ? String(def) : v), base);
};

/** A number within [min, max] (e.g. a rate). */
export const num = (min: number, max: number, def: number) =>
  z.preprocess(
    (v) => (v === undefined || v === "" ? String(def) : v),
    z
      .string()
      .regex(/^-?\d+(\.\d+)?$/, `must be a number between ${min} and ${max}`)
      .transform(Number)
      .pipe(z.number().min(min, `must be ≥ ${min}`).max(max, `must be ≤ ${max}`)),
  );

export const bool = (def: boolean) =>
  z.preprocess(
    (v) => (v === undefined || v === "" ? String(def) : String(v).toLowerCase()),
    z
      .enum(["true", "false", "1", "0", "yes", "no"], {
        errorMap: () => ({ message: "must be true or false" }),
      })
      .transform((v) => v === "true" || v === "1" || v === "yes"),
  );

/** Comma list of host:port. */
export const hostPorts = (name: string, example: string) =>
  z
    .string({ required_error: `is not set: give a comma list of host:port, e.g. ${example}` })
    .transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    .superRefine((list, ctx) => {
      if (list.length === 0)
        ctx.addIssue({ code: "custom", message: `is empty: give a comma list of host:port, e.g. ${example}` });
      for (const hp of list) {
        if (!/^[^\s:]+:\d{1,5}$/.test(hp)) {
          ctx.addIssue({ code: "custom", message: `has "${hp}", which is not host:port (${name} e.g. ${example})` });
        }
      }
    });

export const url = (example: string) =>
  z
    .string({ required_error: `is not set: give a URL, e.g. ${example}` })
    .url(`must be a URL, e.g. ${example}`)
    .transform((u) => u.replace(/\/+$/, ""));

export const logLevel = z.preprocess(
  (v) => (v === undefined || v === "" ? "info" : v),
  z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
    errorMap: () => ({ message: "must be one of fatal, error, warn, info, debug, trace, silent" }),
  }),
);

/** Variables every worker reads. */
export const commonShape = {
  LOG_LEVEL: logLevel,
  METRICS_PORT: int(0, 65535, 9464),
  /**
   * Address the worker's HTTP servers (/metrics, /healthz, the API) listen on: loopback on a
   * shared machine; 0.0.0.0 in a container (the stacks set it), where other containers dial it.
   */
  LISTEN_HOST: z.preprocess(
    (v) => v || "127.0.0.1",
    z.string().ip({ version: "v4", message: "must be an IPv4 address such as 127.0.0.1 or 0.0.0.0" }),
  ),
};

export const pgShape = {
  PG_HOST: z.preprocess((v) => v || "127.0.0.1", z.string()),
  PG_PORT: int(1, 65535, 5432),
  PG_DATABASE: str("set it to the PostgreSQL database name, e.g. pipeline"),
  PG_USER: str("set it to the PostgreSQL role the worker logs in as"),
  PG_PASSWORD: z.string().default(""),
};

export const kafkaShape = {
  KAFKA_BROKERS: hostPorts("KAFKA_BROKERS", "127.0.0.1:9092"),
  SCHEMA_REGISTRY_URL: url("http://127.0.0.1:8081"),
  TOPIC_PARTITIONS: int(1, 1000, 6),
  TOPIC_REPLICATION_FACTOR: int(1, 10, 1),
};

/** Consistency levels a worker may write at (runtime/lib/cassandra.ts maps them to the driver's). */
export const CASSANDRA_CONSISTENCIES = ["LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL", "LOCAL_ONE", "ONE"] as const;
export type CassandraConsistency = (typeof CASSANDRA_CONSISTENCIES)[number];

export const cassandraShape = {
  CASSANDRA_CONTACT_POINTS: hostPorts("CASSANDRA_CONTACT_POINTS", "127.0.0.1:9042"),
  CASSANDRA_LOCAL_DC: str("set it to the Cassandra data center of the contact points, e.g. datacenter1"),
  CASSANDRA_USER: z.string().optional(),
  CASSANDRA_PASSWORD: z.string().optional(),
  CASSANDRA_REPLICATION_FACTOR: int(1, 10, 1),
  CASSANDRA_CONSISTENCY: z.preprocess((v) => v || "LOCAL_QUORUM", z.enum(CASSANDRA_CONSISTENCIES)),
};

export const ingestSchema = z.object({
  ...commonShape,
  ...pgShape,
  API_BASE_URL: url("http://127.0.0.1:8000"),
  INGEST_BATCH_SIZE: int(1, 5000, 1000),
  INGEST_SEED: z.preprocess(
    (v) => v || "pipeline",
    z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, _ . or -"),
  ),
  /** Batches (pages) per one-shot run. */
  INGEST_BATCHES: int(1, 1_000_000, 1),
  /**
   * One-shot mode: the run these pages belong to (the DAG passes its run id). A retried run
   * stores only the pages its earlier tries did not, so a run is INGEST_BATCHES pages however
   * often it is tried.
   */
  INGEST_RUN_ID: z.preprocess(
    (v) => v || undefined,
    z
      .string()
      .regex(/^[\x21-\x7e]{1,250}$/, "must be 1-250 printable ASCII characters without spaces")
      .optional(),
  ),
  /** Pause between batches in loop mode. */
  INGEST_INTERVAL_MS: int(0, 3_600_000, 1000),
  INGEST_HTTP_TIMEOUT_MS: int(100, 600_000, 15_000),
  INGEST_RETRIES: int(0, 100, 10),
  INGEST_RETRY_BASE_MS: int(1, 60_000, 200),
  INGEST_RETRY_MAX_MS: int(1, 600_000, 10_000),
  /** The largest API response read (bytes); a larger page is recorded as failed and skipped. */
  INGEST_MAX_RESPONSE_BYTES: int(1024, 1_073_741_824, 64 << 20),
  /** One-shot mode: the Pushgateway the run's metrics go to when it ends; unset: none are pushed. */
  PUSHGATEWAY_URL: z.preprocess((v) => v || undefined, url("http://pushgateway:9091").optional()),
});
export type IngestConfig = z.infer<typeof ingestSchema>;

export const relaySchema = z.object({
  ...commonShape,
  ...pgShape,
  ...kafkaShape,
  RELAY_BATCH_SIZE: int(1, 10_000, 5000),
  RELAY_POLL_MS: int(1, 60_000, 200),
  /** How many of the 64 key buckets one relay claims per round (share with other relays). */
  RELAY_MAX_BUCKETS: int(1, 64, 16),
  /** Round loops in one relay process, each on its own PostgreSQL connection and bucket locks. */
  RELAY_CONCURRENCY: int(1, 16, 1),
  /** Bytes of encoded messages per Kafka send (each partition's record batch stays under the broker's 1 MiB). */
  RELAY_MAX_SEND_BYTES: int(16_384, 16_000_000, 900_000),
  /** Seconds a published outbox row is kept (7 days); 0 keeps every row for ever. */
  RELAY_OUTBOX_RETENTION_S: int(0, 31_622_400, 604_800),
  /** Between two pruning passes (one relay prunes at a time). */
  RELAY_PRUNE_EVERY_MS: int(1000, 86_400_000, 300_000),
  /** Rows per delete statement of a pruning pass. */
  RELAY_PRUNE_BATCH: int(100, 100_000, 10_000),
  /** Between two delete statements of a pass. */
  RELAY_PRUNE_PAUSE_MS: int(0, 60_000, 500),
});
export type RelayConfig = z.infer<typeof relaySchema>;

/** The processor's consumer group, unless PROCESSOR_GROUP_ID says otherwise. */
export const PROCESSOR_GROUP = "users-processor";

export const lagSchema = z.object({
  ...commonShape,
  KAFKA_BROKERS: kafkaShape.KAFKA_BROKERS,
  /** The consumer groups watched, comma-separated (the processor's by default). */
  LAG_GROUPS: z.preprocess(
    (v) => v || PROCESSOR_GROUP,
    z
      .string()
      .transform((s) =>
        s
          .split(",")
          .map((g) => g.trim())
          .filter((g) => g.length > 0),
      )
      .pipe(z.array(z.string()).min(1, "is empty: give a comma list of consumer group ids, e.g. users-processor")),
  ),
  /** Between two readings (Prometheus scrapes the last one). */
  LAG_INTERVAL_MS: int(500, 600_000, 5000),
});
export type LagConfig = z.infer<typeof lagSchema>;

export const processorSchema = z.object({
  ...commonShape,
  ...kafkaShape,
  ...cassandraShape,
  PROCESSOR_GROUP_ID: z.preprocess((v) => v || PROCESSOR_GROUP, z.string()),
  PROCESSOR_CONCURRENCY: int(1, 2048, 128),
  /** Messages per Cassandra round inside one fetched batch. */
  PROCESSOR_CHUNK_SIZE: int(1, 100_000, 1000),
  /**
   * A fetch returns once this many bytes are there or PROCESSOR_FETCH_MAX_WAIT_MS has passed:
   * bigger batches behind a relay that publishes as ingest commits (fewer offset commits and
   * heartbeats per record), at the cost of up to that wait in latency. 1: at once.
   */
  PROCESSOR_FETCH_MIN_BYTES: int(1, 16 << 20, 1),
  PROCESSOR_FETCH_MAX_WAIT_MS: int(1, 10_000, 5_000),
  /**
   * Partitions handled at once (kafkajs partitionsConsumedConcurrently), each with up to PROCESSOR_CONCURRENCY writes.
   */
  PROCESSOR_PARTITIONS_CONCURRENCY: int(1, 1000, 3),
  /**
   * How long the group waits for a member that stopped heartbeating (a SIGKILLed processor holds
   * its partitions this long); the brokers' group.min.session.timeout.ms (2 s, ours) is the floor.
   * It heartbeats every quarter of it (at most 1 s), and an idle fetch waits no longer than that.
   */
  PROCESSOR_SESSION_TIMEOUT_MS: int(2_000, 300_000, 3_000),
  /** In --once mode: stop after the group is caught up and idle this long. */
  PROCESSOR_IDLE_EXIT_MS: int(100, 600_000, 3000),
});
export type ProcessorConfig = z.infer<typeof processorSchema>;

export const apiSchema = z.object({
  ...commonShape,
  API_PORT: int(0, 65535, 8000),
  API_FAULT_ERROR_RATE: num(0, 1, 0),
  API_FAULT_LATENCY_MS: int(0, 600_000, 0),
  API_FAULT_MALFORMED_RATE: num(0, 1, 0),
});
export type ApiConfig = z.infer<typeof apiSchema>;

/** Parse `env` with `schema`; throw a ConfigError listing every bad variable. */
export function loadConfig<S extends z.ZodTypeAny>(schema: S, env: Env = process.env): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const name = i.path.join(".");
    const value = typeof env[name] === "string" ? ` (got "${env[name]}")` : "";
    return `${name} ${i.message}${value}`;
  });
  throw new ConfigError(problems);
}
