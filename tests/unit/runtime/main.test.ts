import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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

  it("exits 2 with the usage on an unknown command, and 2 with the bad variables on bad config", function () {
    this.timeout(30_000);
    const tsx = path.join(ROOT, "node_modules", ".bin", "tsx");
    const u = spawnSync(tsx, ["runtime/main.ts", "bogus"], { cwd: ROOT, encoding: "utf8" });
    assert.equal(u.status, 2);
    assert.match(u.stderr, /unknown command "bogus"\nusage: main <ingest\|relay\|processor\|api> \[--once\]/);
    const env = { PATH: process.env.PATH ?? "", PG_DATABASE: "x", PG_USER: "x", KAFKA_BROKERS: "nohost" };
    const c = spawnSync(tsx, ["runtime/main.ts", "relay", "--once"], { cwd: ROOT, encoding: "utf8", env });
    assert.equal(c.status, 2);
    assert.match(c.stderr, /KAFKA_BROKERS has "nohost", which is not host:port/);
    assert.match(c.stderr, /SCHEMA_REGISTRY_URL is not set/);
  });
});
