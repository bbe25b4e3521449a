/**
 * PostgreSQL pool from the worker config, hardened for restarts and half-open connections:
 *  - 'error' listeners on the pool and on every client: an idle or checked-out client whose
 *    server went away emits 'error', and without a listener Node kills the process;
 *  - TCP keepalive, a connect timeout, and server-side statement and idle-in-transaction
 *    timeouts, so a dead connection fails a round (rows given back, bucket locks freed with the
 *    session) instead of hanging it while /healthz says 200;
 *  - a client-side query timeout a little above the statement timeout, for a server that no
 *    longer answers at all.
 */
import { Pool } from "pg";
import type { Logger } from "./logger";

export interface PgConfig {
  PG_HOST: string;
  PG_PORT: number;
  PG_DATABASE: string;
  PG_USER: string;
  PG_PASSWORD: string;
}

export interface PgTimeouts {
  statementTimeoutMs: number;
  idleInTransactionMs: number;
  connectTimeoutMs: number;
}

export const PG_TIMEOUTS: PgTimeouts = {
  statementTimeoutMs: 30_000,
  idleInTransactionMs: 60_000,
  connectTimeoutMs: 5_000,
};

export function createPgPool(c: PgConfig, max = 4, log?: Logger, t: PgTimeouts = PG_TIMEOUTS): Pool {
  const pool = new Pool({
    host: c.PG_HOST,
    port: c.PG_PORT,
    database: c.PG_DATABASE,
    user: c.PG_USER,
    password: c.PG_PASSWORD,
    max,
    keepAlive: true,
    keepAliveInitialDelayMillis: 5_000,
    connectionTimeoutMillis: t.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: t.statementTimeoutMs,
    idle_in_transaction_session_timeout: t.idleInTransactionMs,
    query_timeout: t.statementTimeoutMs + 5_000,
  });
  pool.on("error", (err) => {
    // an idle client lost its server (restart, network): the pool has already discarded it
    log?.warn({ err: err.message }, "PostgreSQL connection lost while idle; the pool will reconnect");
  });
  // A checked-out client between two queries (the relay waiting for Kafka inside its
  // transaction) also emits 'error' when its server goes away, and a client with no listener
  // kills the process. The next query on it fails and the round is retried; say so, no more.
  pool.on("connect", (client) => {
    client.on("error", (err) =>
      log?.warn({ err: err.message }, "PostgreSQL connection lost while in use; the round will be retried"),
    );
  });
  return pool;
}
