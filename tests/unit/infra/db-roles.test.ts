/**
 * Least privilege in the databases, as declared: the pipeline's roles are not superusers, the
 * readers other teams get may only read, the admin roles stay inside the stack. (The integration
 * test tests/integration/db-roles.test.ts checks the same roles on real servers.)
 */
import { strict as assert } from "node:assert";
import {
  CASSANDRA_ADMIN,
  CASSANDRA_READER,
  CASSANDRA_USER,
  cassandraRolesCql,
  POSTGRES_ADMIN,
  POSTGRES_READER,
} from "../../../infra/catalog/db-roles";
import { KEYSPACE } from "../../../runtime/contracts/names";
import { containers, devRun, envOf, hostnameOf, Run, unwrap } from "./harness";

/** Statements of a script that mention a role as grantee or target. */
const grantsTo = (sql: string, role: string) =>
  [...sql.matchAll(new RegExp(`GRANT ([A-Z, ]+) ON ([^;]+?) TO ${role}\\b`, "g"))].map((m) => ({
    what: m[1],
    on: m[2],
  }));

describe("infra: database roles, least privilege", () => {
  let run: Run;
  let script: (host: string) => string;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
    const commandOf = (h: string) => unwrap(containers(run).find((c) => hostnameOf(c) === h)!.inputs.command);
    script = (h) => ((commandOf(h) ?? []) as string[]).join("\n");
  });

  it("PostgreSQL: the server's superuser is not the pipeline's role; the roles job makes the others without it", () => {
    const server = envOf(containers(run).find((c) => hostnameOf(c) === "postgres")!);
    const relay = envOf(containers(run).find((c) => hostnameOf(c) === "relay")!);
    assert.equal(server.POSTGRES_USER, POSTGRES_ADMIN);
    assert.notEqual(relay.PG_USER, POSTGRES_ADMIN);
    const sql = script("postgres-roles");
    for (const role of [relay.PG_USER, "airflow", POSTGRES_READER]) {
      const attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
      assert.match(sql, new RegExp(`ALTER ROLE ${role} WITH ${attributes} `), role);
    }
    // SUPERUSER is given once: to the admin, by a bootstrap role from before the job.
    assert.deepEqual([...sql.matchAll(/(?<!NO)SUPERUSER/g)].length, 1);
    assert.match(sql, new RegExp(`CREATE ROLE ${POSTGRES_ADMIN} SUPERUSER`));
    assert.match(sql, /ALTER DATABASE pipeline OWNER TO pipeline;/);
    assert.match(sql, /REVOKE ALL ON DATABASE pipeline FROM PUBLIC;/);
  });

  it("PostgreSQL: the reader may connect to the pipeline's database and SELECT, nothing else", () => {
    const grants = grantsTo(script("postgres-roles"), POSTGRES_READER);
    assert.ok(grants.length >= 3);
    for (const g of grants) assert.match(g.what, /^(CONNECT|USAGE|SELECT)$/, `${g.what} ON ${g.on}`);
    assert.ok(grants.some((g) => g.what === "SELECT" && /ALL TABLES IN SCHEMA public/.test(g.on)));
  });

  for (const rf of [1, 3]) {
    it(`Cassandra (RF ${rf}): pipeline no superuser, rights on ${KEYSPACE} only; the reader SELECTs`, () => {
      const cql = cassandraRolesCql(rf, "dc1").join("\n");
      for (const role of [CASSANDRA_USER, CASSANDRA_READER]) {
        const alter = `ALTER ROLE ${role} WITH PASSWORD = '%s' AND LOGIN = true AND SUPERUSER = false;`;
        assert.match(cql, new RegExp(alter));
      }
      assert.doesNotMatch(cql, /SUPERUSER = true/);
      assert.match(cql, /ALTER ROLE cassandra WITH PASSWORD = '%s' AND SUPERUSER = false AND LOGIN = false;/);
      // its keyspace, and one server view: the node's settings, to see whether its acks are durable
      const pipeline = grantsTo(cql, CASSANDRA_USER);
      const onKeyspace = pipeline.filter((g) => g.on === `KEYSPACE ${KEYSPACE}`);
      assert.deepEqual(onKeyspace.map((g) => g.what).sort(), ["CREATE", "MODIFY", "SELECT"]);
      const elsewhere = pipeline.filter((g) => g.on !== `KEYSPACE ${KEYSPACE}`);
      assert.deepEqual(elsewhere, [{ what: "SELECT", on: "TABLE system_views.settings" }]);
      assert.deepEqual(grantsTo(cql, CASSANDRA_READER), [{ what: "SELECT", on: `KEYSPACE ${KEYSPACE}` }]);
      for (const p of ["ALTER", "DROP", "AUTHORIZE"]) {
        assert.match(cql, new RegExp(`REVOKE ${p} ON KEYSPACE ${KEYSPACE} FROM ${CASSANDRA_USER};`));
      }
    });
  }

  it("Cassandra: the job logs in as the admin role; the default superuser's password is not the image's", () => {
    const auth = script("cassandra-auth");
    assert.match(auth, new RegExp(`login admin ${CASSANDRA_ADMIN} "\\$CASSANDRA_ADMIN_PASSWORD"`));
    assert.match(auth, /cq admin "\$d\/roles.cql"/);
    assert.ok(envOf(containers(run).find((c) => hostnameOf(c) === "cassandra-auth")!).CASSANDRA_DEFAULT_PASSWORD);
  });

  it("the outputs name the readers for other teams, and no admin role", async () => {
    const o = run.outputs!;
    assert.equal(o.postgresReaderUser, POSTGRES_READER);
    assert.equal(o.cassandraReaderUser, CASSANDRA_READER);
    const users = [o.postgres.user, o.postgresReaderUser, o.cassandraUser, o.cassandraReaderUser];
    for (const admin of [POSTGRES_ADMIN, CASSANDRA_ADMIN, "cassandra"]) assert.ok(!users.includes(admin), admin);
  });
});
