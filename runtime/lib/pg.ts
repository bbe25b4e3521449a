/** PostgreSQL pool from the worker config. */
import { Pool } from "pg";

export interface PgConfig {
  PG_HOST: string;
  PG_PORT: number;
  PG_DATABASE: string;
  PG_USER: string;
  PG_PASSWORD: string;
}

export function createPgPool(c: PgConfig, max = 4): Pool {
  return new Pool({ host: c.PG_HOST, port: c.PG_PORT, database: c.PG_DATABASE, user: c.PG_USER, password: c.PG_PASSWORD, max });
}
