import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { parseArgs } from "../../../runtime/main";

const ROOT = path.resolve(__dirname, "../../..");

describe("worker entry point", () => {
  it("parses <command> [--once]", () => {
    assert.deepEqual(parseArgs(["ingest", "--once"]), { command: "ingest", once: true });
    assert.deepEqual(parseArgs(["--once", "relay"]), { command: "relay", once: true });
    assert.deepEqual(parseArgs(["api"]), { command: "api", once: false });
    assert.deepEqual(parseArgs([]), { error: "no command given" });
    assert.deepEqual(parseArgs(["bogus"]), { error: 'unknown command "bogus"' });
    assert.deepEqual(parseArgs(["relay", "extra"]), { error: "unexpected arguments: extra" });
    assert.deepEqual(parseArgs(["--fast"]), { error: "unknown option --fast" });
  });

  it("exits 2 with the usage on an unknown command, and 2 with the bad variables on bad config", async function () {
    this.timeout(30_000);
    // Each run starts tsx and loads every worker's modules (about a second): the two run side by side.
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
    assert.match(u.stderr, /unknown command "bogus"\nusage: main <ingest\|relay\|processor\|api> \[--once\]/);
    assert.equal(c.status, 2);
    assert.match(c.stderr, /KAFKA_BROKERS has "nohost", which is not host:port/);
    assert.match(c.stderr, /SCHEMA_REGISTRY_URL is not set/);
  });
});
