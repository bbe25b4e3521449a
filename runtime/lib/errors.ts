/**
 * Errors classified once, by whose fault they are, so every worker reacts the same way:
 *
 *   infrastructure  a dependency is down, restarting, slow or overloaded (PostgreSQL, Kafka,
 *                   Cassandra, the Schema Registry, the network). Retry with backoff, keep the
 *                   offset / give the rows back, mark the loop unhealthy. Never dead-letter.
 *   content         this record (or page) is bad and will stay bad however often it is retried.
 *                   Park it with a reason (DLQ, rejected_records, a parked outbox row), go on.
 *   programming     our bug or our configuration (SQL syntax, a TypeError, a schema the registry
 *                   refuses). Crash loudly: retrying cannot help and parking would hide it.
 *
 * `classify(err)` knows the error shapes of pg, kafkajs, cassandra-driver, the registry client
 * and Node's sockets; an error it does not recognise is a programming error (found, then named).
 */

export type Fault = "infrastructure" | "content" | "programming";

/** A dependency failed; another attempt later may succeed. */
export class InfrastructureError extends Error {
  readonly fault = "infrastructure" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "InfrastructureError";
  }
}

/**
 * The registry no longer knows (or gives another schema for) the schema id our own relay wrote a
 * record with: its _schemas were lost or rebuilt. The record is good; its partition stops (retried,
 * offset kept) and alerts until the registry is repaired.
 */
export class SchemaLostError extends InfrastructureError {
  constructor(
    readonly schemaId: number,
    message: string,
  ) {
    super(message);
    this.name = "SchemaLostError";
  }
}

/** The record itself is bad: park it with this reason. */
export class ContentError extends Error {
  readonly fault = "content" as const;
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
    this.name = "ContentError";
  }
}

/** Our own mistake; the worker must stop and say so. */
export class ProgrammingError extends Error {
  readonly fault = "programming" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProgrammingError";
  }
}

const NODE_NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "ESOCKETTIMEDOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ABORT_ERR",
]);

/** pg client messages that carry no SQLSTATE but mean the connection or server went away. */
const PG_CONNECTION_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /not queryable/i,
  /Client was closed/i,
  /Query read timeout/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /terminating connection/i,
  /server closed the connection/i,
  /socket hang up/i,
];

/** kafkajs protocol errors that are about the messages we sent, not the broker's state. */
const KAFKA_CONTENT_TYPES = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
  "INVALID_RECORD_TIMESTAMP",
]);
/** kafkajs errors that say our configuration or code is wrong. */
const KAFKA_PROGRAMMING_TYPES = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "GROUP_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "UNSUPPORTED_VERSION",
  "INVALID_REQUIRED_ACKS",
  "INVALID_CONFIG",
  "INVALID_SESSION_TIMEOUT",
]);

/** cassandra-driver ResponseError codes that mean our statement is wrong (types.responseErrorCodes). */
const CASSANDRA_PROGRAMMING_CODES = new Set([
  0x2000 /* syntax */, 0x2100 /* unauthorized */, 0x2200 /* invalid */, 0x2300 /* config */,
  0x0100 /* bad credentials */,
]);
const CASSANDRA_INFRA_NAMES = new Set([
  "NoHostAvailableError",
  "OperationTimedOutError",
  "BusyConnectionError",
  "DriverInternalError",
]);
/** cassandra-driver DriverError messages of a connection lost or not made (lib/connection.js, writers.js). */
const CASSANDRA_CONNECTION_MESSAGES = [/^Socket was closed$/, /^Connection timeout$/];

type Shape = {
  name?: string;
  code?: unknown;
  type?: string;
  retriable?: boolean;
  status?: number;
  message?: string;
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown[];
  severity?: string;
};

/**
 * SQLSTATEs of a server that is restarting, failing over, overloaded or short of a resource: the
 * same statement succeeds later (often on the new primary). By class (two characters) or code.
 */
const PG_INFRA_CLASSES = new Set([
  "08", // connection exception
  "40", // transaction rollback: serialization failure, deadlock, statement completion unknown
  "53", // insufficient resources: disk full, out of memory, too many connections
  "57", // operator intervention: admin/crash shutdown, cannot connect now, statement timeout
  "58", // system error (I/O)
  "F0", // the server's configuration file
  "XX", // internal error, data corrupted
]);
const PG_INFRA_CODES = new Set([
  "25006", // read_only_sql_transaction: a standby, or a primary demoted by a failover
  "25P03", // idle_in_transaction_session_timeout
  "25P04", // transaction_timeout
  "55P03", // lock_not_available
  "55006", // object_in_use
  "72000", // snapshot_too_old
]);

export function classifyPg(code: string, message = ""): Fault {
  const cls = code.slice(0, 2);
  if (PG_INFRA_CLASSES.has(cls) || PG_INFRA_CODES.has(code)) return "infrastructure";
  // 55000 is also our misuse, but "recovery is in progress" is a standby answering as the primary
  if (code === "55000" && /recovery is in progress/i.test(message)) return "infrastructure";
  // 22 data exceptions (NUL in text, out of range), 23 constraint violations: the row is bad
  if (cls === "22" || cls === "23") return "content";
  return "programming";
}

/** Whose fault `err` is. */
export function classify(err: unknown): Fault {
  if (err instanceof InfrastructureError) return "infrastructure";
  if (err instanceof ContentError) return "content";
  if (err instanceof ProgrammingError) return "programming";
  if (err === null || typeof err !== "object") return "programming";
  const e = err as Shape;
  const name = e.name ?? "";
  const message = e.message ?? "";

  // Node sockets, fetch, timeouts
  if (typeof e.code === "string" && NODE_NET_CODES.has(e.code)) return "infrastructure";
  if (name === "AbortError" || name === "TimeoutError") return "infrastructure";

  // pg: DatabaseError carries a SQLSTATE (5 characters) and a severity
  if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code) && e.severity !== undefined)
    return classifyPg(e.code, message);
  if (PG_CONNECTION_MESSAGES.some((re) => re.test(message))) return "infrastructure";

  // kafkajs: KafkaJS* errors; protocol errors carry `type`
  if (name.startsWith("KafkaJS")) {
    if (e.type && KAFKA_CONTENT_TYPES.has(e.type)) return "content";
    if (e.type && KAFKA_PROGRAMMING_TYPES.has(e.type)) return "programming";
    // retries exhausted, aggregate errors: judge by what caused them
    const inner = e.cause ?? e.originalError ?? (Array.isArray(e.errors) ? e.errors[0] : undefined);
    if (inner && inner !== err) {
      const f = classify(inner);
      if (f !== "programming") return f;
    }
    return "infrastructure";
  }

  // cassandra-driver
  if (CASSANDRA_INFRA_NAMES.has(name)) return "infrastructure";
  if (name === "DriverError" && CASSANDRA_CONNECTION_MESSAGES.some((re) => re.test(message))) return "infrastructure";
  if (name === "ResponseError" && typeof e.code === "number")
    return CASSANDRA_PROGRAMMING_CODES.has(e.code) ? "programming" : "infrastructure";

  // the Schema Registry client (mappersmith): network failures come as status 400 with no body
  if (name === "ResponseError" && typeof e.status === "number") {
    if (e.status === 401 || e.status === 403 || e.status === 409 || e.status === 422) return "programming";
    return "infrastructure";
  }

  if (e.cause && e.cause !== err) return classify(e.cause);
  return "programming";
}

export const isInfrastructure = (err: unknown) => classify(err) === "infrastructure";

/** One line for logs and health: the message and, for wrapped errors, the cause's. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message !== err.message ? `${err.message} (${cause.message})` : err.message;
}
