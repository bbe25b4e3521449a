/**
 * A dropped connection, simulated on loopback with no Docker engine: a server on 127.0.0.1 that
 * accepts every connection and never answers (a stalled TLS handshake or response looks the same to
 * the client). Maven and npm of this machine fetch through it with the bound flags our Dockerfiles
 * pass (their names as written there, their times scaled down), and must give up; without those
 * flags the same command still waits. So a misspelt property name goes red here, not on a build.
 * Needs mvn (scripts/services installs it for the JVM services) and npm.
 */
import { strict as assert } from "node:assert";
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "../..");
const dockerfile = (name: string) => readFileSync(join(REPO, "images", name, "Dockerfile"), "utf8");

/** A loopback server that holds every connection open and sends nothing. */
async function stallServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => void sockets.push(s));
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address();
  assert.ok(addr && typeof addr === "object");
  return {
    port: addr.port,
    connections: () => sockets.length,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((res) => server.close(() => res()));
    },
  };
}

interface Run {
  proc: ChildProcess;
  output: () => string;
  /** Resolves with the exit code, or "running" if it has not exited within ms. */
  exit: (ms: number) => Promise<number | "running">;
  kill: () => void;
}

function start(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Run {
  const proc = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: "pipe" });
  let out = "";
  proc.stdout?.on("data", (d) => (out += d.toString()));
  proc.stderr?.on("data", (d) => (out += d.toString()));
  const exited = new Promise<number>((res) => proc.on("exit", (c) => res(c ?? 1)));
  return {
    proc,
    output: () => out,
    exit: (ms) => Promise.race([exited, new Promise<"running">((r) => setTimeout(() => r("running"), ms))]),
    kill: () => {
      try {
        if (proc.pid) process.kill(-proc.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    },
  };
}

/** Our flags as the Dockerfile writes them, times scaled down: ms timeouts to `ms`, counts kept. */
function scaled(flags: string[], ms: number): string[] {
  return flags.map((f) => f.replace(/^(.*(?:[Tt]imeout|rto)[^=]*=)\d+$/, `$1${ms}`));
}

describe("image downloads against a stalled connection (loopback, no Docker engine)", function () {
  this.timeout(300_000);
  let dir = "";
  let stall: Awaited<ReturnType<typeof stallServer>>;
  const runs: Run[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "stall-"));
    stall = await stallServer();
  });
  afterEach(async () => {
    for (const r of runs.splice(0)) r.kill();
    await stall.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("Maven with the spark image's bounds gives up; with its defaults it still waits", async () => {
    const flags = dockerfile("spark").match(/-Daether\.[\w.]+=\w+|-Dmaven\.wagon\.[\w.]+=\w+/g) ?? [];
    assert.ok(
      flags.some((f) => f.startsWith("-Daether.connector.requestTimeout=")),
      flags.join(" "),
    );
    assert.ok(
      flags.some((f) => f.startsWith("-Dmaven.wagon.rto=")),
      flags.join(" "),
    );
    cpSync(join(REPO, "images/spark/connectors/pom.xml"), join(dir, "pom.xml"));
    writeFileSync(
      join(dir, "settings.xml"),
      `<settings><mirrors><mirror><id>stall</id><mirrorOf>*</mirrorOf>` +
        `<url>http://127.0.0.1:${stall.port}/</url></mirror></mirrors></settings>`,
    );
    const mvn = (extra: string[], repo: string) =>
      start(
        "mvn",
        [
          "-B",
          "-q",
          "-s",
          "settings.xml",
          `-Dmaven.repo.local=${join(dir, repo)}`,
          "-Dspark.version=3.5.1",
          "-Dcassandra.connector.version=3.5.1",
          `-DoutputDirectory=${join(dir, "out")}`,
          ...extra,
          "dependency:copy-dependencies",
        ],
        dir,
      );

    const unbounded = mvn([], "m2-defaults");
    runs.push(unbounded);
    assert.equal(await unbounded.exit(15_000), "running", "Maven's defaults gave up on a stall within 15 s?");
    unbounded.kill();

    const before = stall.connections();
    const t0 = Date.now();
    const bounded = mvn(scaled(flags, 2000), "m2");
    runs.push(bounded);
    const code = await bounded.exit(120_000);
    const s = (Date.now() - t0) / 1000;
    assert.notEqual(code, "running", `Maven with our bounds still waits on a stalled mirror after ${s} s`);
    assert.notEqual(code, 0);
    assert.ok(stall.connections() - before >= 2, "Maven tried the stalled mirror again");
    console.log(`      mvn gave up after ${s.toFixed(1)} s, ${stall.connections() - before} connections`);
  });

  // npm gives up on each stalled request and retries it (logged at --loglevel=http); failing the
  // whole install takes one fetch per package, many minutes: the step's `timeout -k` bounds that.
  it("npm ci with the worker image's bounds gives up on a stalled request and retries it", async () => {
    const flags = dockerfile("workers").match(/--fetch-[\w-]+=\d+/g) ?? [];
    assert.ok(
      flags.some((f) => f.startsWith("--fetch-timeout=")),
      flags.join(" "),
    );
    cpSync(join(REPO, "package.json"), join(dir, "package.json"));
    cpSync(join(REPO, "package-lock.json"), join(dir, "package-lock.json"));
    // The lockfile's registry host is replaced by --registry (npm's replace-registry-host default).
    const npm = (extra: string[], cache: string) =>
      start(
        "npm",
        [
          "ci",
          "--no-audit",
          "--no-fund",
          `--registry=http://127.0.0.1:${stall.port}/`,
          `--cache=${join(dir, cache)}`,
          "--loglevel=http",
          ...extra,
        ],
        dir,
      );
    // npm logs "attempt N failed" when it schedules attempt N + 1.
    const timedOut = /attempt 1 failed with FETCH_ERROR/;

    const unbounded = npm([], "cache-defaults");
    runs.push(unbounded);
    await unbounded.exit(15_000);
    assert.doesNotMatch(unbounded.output(), timedOut, "npm's defaults gave up on a stall within 15 s?");
    unbounded.kill();

    const t0 = Date.now();
    const bounded = npm(
      flags.map((f) =>
        f
          .replace(/^--fetch-timeout=\d+$/, "--fetch-timeout=2000")
          .replace(/^--fetch-retry-mintimeout=\d+$/, "--fetch-retry-mintimeout=100")
          .replace(/^--fetch-retry-maxtimeout=\d+$/, "--fetch-retry-maxtimeout=500"),
      ),
      "cache",
    );
    runs.push(bounded);
    while (!timedOut.test(bounded.output()) && Date.now() - t0 < 90_000) await bounded.exit(500);
    const s = (Date.now() - t0) / 1000;
    assert.match(bounded.output(), timedOut, `npm with our bounds still waits on a stalled registry after ${s} s`);
    console.log(`      npm gave up on a stalled request and retried it within ${s.toFixed(1)} s`);
  });
});
