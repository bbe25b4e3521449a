/**
 * The worker entry point as the images and the pipeline script start it (tsx runtime/main.ts): the
 * process's exit code and stderr for a usage error and for bad configuration. No service needed;
 * it lives in this ring because each run starts tsx and loads every worker's modules.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");

describe("worker entry point (a process)", () => {
  it("exits 2 with the usage on an unknown command, and 2 with the bad variables on bad config", async function () {
    this.timeout(60_000);
    const tsx = path.join(ROOT, "node_modules", ".bin", "tsx");
    const run = (args: string[], env?: NodeJS.ProcessEnv) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const opts = { cwd: ROOT, encoding: "utf8" as const, env };
        const child = execFile(tsx, ["runtime/main.ts", ...args], opts, (_e, _out, stderr) => {
          resolve({ status: child.exitCode, stderr });
        });
      });
    const env = { PATH: process.env.PATH ?? "", PG_DATABASE: "x", PG_USER: "x", KAFKA_BROKERS: "nohost" };
    const [u, c] = await Promise.all([run(["bogus"]), run(["relay", "--once"], env)]);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /unknown command "bogus"\nusage: main <ingest\|relay\|processor\|api\|lag> \[--once\]/);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /KAFKA_BROKERS has "nohost", which is not host:port/);
    assert.match(c.stderr, /SCHEMA_REGISTRY_URL is not set/);
  });
});
