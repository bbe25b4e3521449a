import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { containers, devRun, envOf, hostnameOf, plainLeaks, resolve, Run } from "./harness";

describe("infra: no secret in plain text", () => {
  let run: Run;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
  });

  it("generates every password and key with @pulumi/random", () => {
    // 11 passwords + the Fernet key; the scan below is only as good as this list.
    assert.equal(run.generated.length, 12);
  });

  it("the generated values reach the containers that need them", () => {
    const env = (h: string) => envOf(containers(run).find((c) => hostnameOf(c) === h)!);
    const found = new Set(
      containers(run)
        .flatMap((c) => Object.values(envOf(c)))
        .flatMap((v) => run.generated.filter((g) => v.includes(g))),
    );
    assert.equal(
      found.size,
      run.generated.length,
      "a generated secret is used nowhere: the leak scan would prove nothing",
    );
    assert.equal(env("postgres-roles").PG_PIPELINE_PASSWORD, env("relay").PG_PASSWORD);
    assert.equal(env("postgres").POSTGRES_PASSWORD, env("postgres-roles").PG_ADMIN_PASSWORD);
    assert.notEqual(env("postgres").POSTGRES_PASSWORD, env("relay").PG_PASSWORD);
    assert.equal(env("cassandra-auth").CASSANDRA_PASSWORD, env("processor").CASSANDRA_PASSWORD);
    // Fernet: 32 bytes, url-safe base64 with its padding (44 characters).
    assert.match(env("airflow-scheduler").AIRFLOW__CORE__FERNET_KEY, /^[A-Za-z0-9_-]{43}=$/);
  });

  it("appear in no resource input unwrapped (container env lists are secret as a whole)", () => {
    const leaks = run.resources.flatMap((r) => plainLeaks(r.inputs, run.generated).map((p) => `${r.name}${p}`));
    assert.deepEqual(leaks, []);
  });

  it("appear in no stack output unwrapped", async () => {
    const walk = async (v: unknown, path: string): Promise<string[]> => {
      const { value, secret } = await resolve(v);
      if (typeof value === "string") return !secret && run.generated.some((g) => value.includes(g)) ? [path] : [];
      if (typeof value === "object" && value !== null) {
        return (await Promise.all(Object.entries(value).map(([k, x]) => walk(x, `${path}.${k}`)))).flat();
      }
      return [];
    };
    assert.deepEqual(await walk(run.outputs, "outputs"), []);
    const o = run.outputs!;
    for (const s of [
      o.postgresPassword,
      o.postgresReaderPassword,
      o.cassandraPassword,
      o.cassandraReaderPassword,
      o.airflowAdminPassword,
    ]) {
      const r = await resolve(s);
      assert.ok(r.secret && run.generated.includes(r.value as string));
    }
  });

  it("the admin roles' passwords are in no output", async () => {
    const admins = ["postgres-admin-password", "cassandra-admin-password", "cassandra-default-password"].map((n) =>
      run.generated.find((g) => g.includes(n.replace(/-/g, "")))!,
    );
    assert.equal(admins.filter(Boolean).length, 3);
    for (const v of Object.values(run.outputs!)) {
      const r = await resolve(v);
      assert.ok(!admins.some((a) => JSON.stringify(r.value).includes(a)));
    }
  });

  it("no stack config file holds a password or key", () => {
    for (const f of fs.readdirSync(".").filter((n) => /^Pulumi\..*\.yaml$/.test(n))) {
      assert.doesNotMatch(fs.readFileSync(f, "utf8"), /(password|secret|fernet|token)\s*:/i, f);
    }
  });
});
