/**
 * The databases' roles on the local services, which scripts/services makes with the statements the
 * stacks' role jobs run (infra/catalog/db-roles.ts): the pipeline's roles are no superusers and can
 * do their job; the read-only roles other teams get can read and cannot write, create or drop; a
 * client with a wrong password, or none, is refused.
 */
import assert from "node:assert/strict";
import { auth, Client as CassandraClient } from "cassandra-driver";
import { Client as PgClient, type ClientConfig } from "pg";
import { KEYSPACE, USERS_TABLE } from "../../runtime/contracts/names";
import { ensureCassandraSchema } from "../../runtime/lib/cassandra";
import { PG_SCHEMA_SQL } from "../../runtime/lib/pg-schema";
import { loadServicesEnv } from "../support/services";

const e = loadServicesEnv([
  "PG_HOST",
  "PG_PORT",
  "PG_DATABASE",
  "PG_USER",
  "PG_PASSWORD",
  "PG_READER_USER",
  "PG_READER_PASSWORD",
  "CASSANDRA_CONTACT_POINTS",
  "CASSANDRA_LOCAL_DC",
  "CASSANDRA_USER",
  "CASSANDRA_PASSWORD",
  "CASSANDRA_READER_USER",
  "CASSANDRA_READER_PASSWORD",
]);

/** PostgreSQL's SQLSTATE for a privilege refused, and for a failed password. */
const PG_DENIED = { code: "42501" };
const PG_BAD_PASSWORD = { code: "28P01" };

async function pg(user: string, password: string, database = e.PG_DATABASE): Promise<PgClient> {
  const config: ClientConfig = { host: e.PG_HOST, port: Number(e.PG_PORT), database, user, password };
  const c = new PgClient(config);
  await c.connect();
  return c;
}

function cql(user?: string, password?: string): CassandraClient {
  return new CassandraClient({
    contactPoints: e.CASSANDRA_CONTACT_POINTS.split(","),
    localDataCenter: e.CASSANDRA_LOCAL_DC,
    authProvider: user === undefined ? undefined : new auth.PlainTextAuthProvider(user, password ?? ""),
  });
}

const UNAUTHORIZED = /Unauthorized|has no \w+ permission|sufficient privileges|permission/i;
const UNAUTHENTICATED = /authentication|credentials|Provided username|not permitted to log in/i;

describe("databases: least privilege on the local services (the stacks' roles)", function () {
  this.timeout(120_000);

  describe("PostgreSQL", () => {
    let writer: PgClient;
    let reader: PgClient;
    before(async () => {
      writer = await pg(e.PG_USER, e.PG_PASSWORD);
      await writer.query(PG_SCHEMA_SQL); // the workers' own migration, in public: the tables other teams read
      reader = await pg(e.PG_READER_USER, e.PG_READER_PASSWORD);
    });
    after(async () => {
      await writer?.end();
      await reader?.end();
    });

    it("the pipeline's role is no superuser and owns its database", async () => {
      const r = await writer.query(
        `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls,
                (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS owner
           FROM pg_roles WHERE rolname = current_user`,
      );
      const none = { rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false };
      assert.deepEqual(r.rows[0], { ...none, owner: e.PG_USER });
      const roles = [e.PG_USER, e.PG_READER_USER, "airflow"];
      const supers = await writer.query("SELECT rolname FROM pg_roles WHERE rolsuper AND rolname = ANY($1)", [roles]);
      assert.deepEqual(supers.rows, []);
    });

    it("the reader can SELECT the pipeline's tables, and is no superuser", async () => {
      const r = await reader.query("SELECT count(*)::int AS n FROM users");
      assert.ok(r.rows[0].n >= 0);
      await reader.query("SELECT id FROM outbox LIMIT 1");
      const me = await reader.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user");
      assert.equal(me.rows[0].rolsuper, false);
    });

    it("the reader cannot INSERT, UPDATE, DELETE, TRUNCATE or CREATE", async () => {
      for (const sql of [
        "INSERT INTO rejected_records (seed, page, idx, raw, reason) VALUES ('s', 1, 1, '{}'::jsonb, 'x')",
        "UPDATE outbox SET id = id WHERE false",
        "DELETE FROM users WHERE false",
        "TRUNCATE outbox",
        "CREATE TABLE public.reader_was_here (x int)",
        "CREATE TEMP TABLE reader_was_here (x int)",
        "CREATE SCHEMA reader_was_here",
      ]) {
        await assert.rejects(reader.query(sql), (err: { code?: string }) => err.code === PG_DENIED.code, sql);
      }
    });

    it("the reader cannot connect to Airflow's database", async () => {
      await assert.rejects(pg(e.PG_READER_USER, e.PG_READER_PASSWORD, "airflow"), PG_DENIED);
    });

    it("a wrong password is refused, for the writer and the reader", async () => {
      await assert.rejects(pg(e.PG_USER, "not-the-password"), PG_BAD_PASSWORD);
      await assert.rejects(pg(e.PG_READER_USER, "not-the-password"), PG_BAD_PASSWORD);
      await assert.rejects(pg("postgres", "postgres"), PG_BAD_PASSWORD);
    });
  });

  describe("Cassandra", () => {
    let writer: CassandraClient;
    let reader: CassandraClient;
    const table = `${KEYSPACE}.${USERS_TABLE}`;
    const id = "00000000-0000-4000-8000-00000000d8b5";
    before(async () => {
      writer = cql(e.CASSANDRA_USER, e.CASSANDRA_PASSWORD);
      await writer.connect();
      // What the processor does at start, as the pipeline's role: the keyspace is there, the table made if missing.
      await ensureCassandraSchema(writer, 1, e.CASSANDRA_LOCAL_DC);
      reader = cql(e.CASSANDRA_READER_USER, e.CASSANDRA_READER_PASSWORD);
      await reader.connect();
    });
    after(async () => {
      await writer?.execute(`DELETE FROM ${table} WHERE id = ?`, [id], { prepare: true }).catch(() => undefined);
      await writer?.shutdown();
      await reader?.shutdown();
    });

    it("the pipeline's role and the reader are no superusers (LIST ROLES)", async () => {
      for (const [c, role] of [
        [writer, e.CASSANDRA_USER],
        [reader, e.CASSANDRA_READER_USER],
      ] as const) {
        const rows = (await c.execute(`LIST ROLES OF ${role}`)).rows;
        const own = rows.find((r) => r.role === role);
        assert.ok(own, `${role} not in LIST ROLES OF ${role}`);
        assert.equal(own.super, false, role);
      }
    });

    it("the pipeline's role writes and reads; cannot alter or drop in its keyspace, make one or a role", async () => {
      const email = "roles@example.test";
      await writer.execute(`INSERT INTO ${table} (id, email) VALUES (?, ?)`, [id, email], { prepare: true });
      const r = await writer.execute(`SELECT email FROM ${table} WHERE id = ?`, [id], { prepare: true });
      assert.equal(r.first()?.email, email);
      // Harmless should they pass: a table that is not there (a superuser is told so), the replication it has.
      await assert.rejects(writer.execute(`DROP TABLE ${KEYSPACE}.no_such_table`), UNAUTHORIZED);
      const replication = "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?";
      const ks = await writer.execute(replication, [KEYSPACE], { prepare: true });
      const now = Object.entries(ks.first().replication as Record<string, string>);
      const same = now.map(([k, v]) => `'${k}': '${v}'`).join(", ");
      await assert.rejects(writer.execute(`ALTER KEYSPACE ${KEYSPACE} WITH replication = {${same}}`), UNAUTHORIZED);
      const simple = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
      const another = `CREATE KEYSPACE pipeline_was_here WITH replication = ${simple}`;
      await assert.rejects(writer.execute(another), UNAUTHORIZED);
      await assert.rejects(writer.execute("CREATE ROLE pipeline_was_here"), UNAUTHORIZED);
    });

    it("the reader can SELECT and cannot INSERT, DELETE, TRUNCATE or CREATE", async () => {
      await reader.execute(`SELECT id FROM ${table} LIMIT 1`);
      for (const s of [
        `INSERT INTO ${table} (id, email) VALUES (${id}, 'reader@example.test')`,
        `DELETE FROM ${table} WHERE id = ${id}`,
        `TRUNCATE ${table}`,
        `CREATE TABLE ${KEYSPACE}.reader_was_here (id int PRIMARY KEY)`,
        `DROP TABLE ${KEYSPACE}.no_such_table`,
      ]) {
        await assert.rejects(reader.execute(s), UNAUTHORIZED, s);
      }
    });

    it("no credentials, a wrong password, and the image's cassandra/cassandra are refused", async () => {
      const wrong = "not-the-password";
      const logins = [
        [undefined, undefined],
        [e.CASSANDRA_USER, wrong],
        ["cassandra", "cassandra"],
      ] as const;
      for (const [user, pw] of logins) {
        const c = cql(user, pw);
        await assert.rejects(c.connect(), UNAUTHENTICATED, String(user));
        await c.shutdown();
      }
    });
  });
});
