import assert from "node:assert/strict";
import { main, parseArgs } from "../../../runtime/main";

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

  it("answers 2 with the usage on an unknown command, and 2 naming the bad variables on bad config", async () => {
    const said: string[] = [];
    const io = (env: NodeJS.ProcessEnv) => ({ env, stderr: (text: string) => void said.push(text) });
    assert.equal(await main(["bogus"], io({})), 2);
    assert.match(said.join(""), /unknown command "bogus"\nusage: main <ingest\|relay\|processor\|api\|lag> \[--once\]/);
    said.length = 0;
    const env = { PG_DATABASE: "x", PG_USER: "x", KAFKA_BROKERS: "nohost" };
    assert.equal(await main(["relay", "--once"], io(env)), 2);
    assert.match(said.join(""), /KAFKA_BROKERS has "nohost", which is not host:port/);
    assert.match(said.join(""), /SCHEMA_REGISTRY_URL is not set/);
  });
});
