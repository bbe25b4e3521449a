/**
 * A lint of our own Dockerfiles: every download inside an image build is bounded (timeouts, retries,
 * a whole try repeated where it can be) and what it installed is checked in the same RUN, before the
 * layer can be cached. A stalled TLS handshake once held Maven 11.5 min (its read timeout is 30 min),
 * and a half-installed node_modules once got cached and broke every later build of the worker image.
 * The RUN steps are also run here with fake npm and mvn (no network, no Docker engine): the loop
 * retries a failed try, and a cut-off install fails the step.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "../..");

/** The RUN instructions of a Dockerfile: continuation lines joined, comment lines dropped. */
export function runSteps(dockerfile: string): string[] {
  const steps: string[] = [];
  let cur: string | undefined;
  for (const raw of dockerfile.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && cur === undefined)) continue;
    const body = line.endsWith("\\") ? line.slice(0, -1) : line;
    if (cur === undefined) {
      if (!/^RUN\s/i.test(body)) {
        if (!line.endsWith("\\")) continue;
        cur = "";
      } else cur = body.replace(/^RUN\s+/i, "");
    } else cur += " " + body;
    if (!line.endsWith("\\")) {
      if (cur !== "") steps.push(cur.replace(/\s+/g, " ").trim());
      cur = undefined;
    }
  }
  return steps;
}

/** The number a flag is set to (`--flag=N`, `--flag N`, `-Dprop=N`), or undefined. */
function num(cmd: string, flag: string): number | undefined {
  const m = new RegExp(`${flag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[= ](\\d+)\\b`).exec(cmd);
  return m ? Number(m[1]) : undefined;
}

interface Rule {
  tool: string;
  /** Finds the download command in a RUN. */
  find: RegExp;
  /** Each must be set to a number in [min, max]. */
  bounds: Array<[flag: string, min: number, max: number]>;
  /** A whole try is repeated: `for try in ...; do ... timeout N <cmd> ...; done`. */
  loop: boolean;
  /** Patterns the RUN must hold after the download (the loop's `done` when there is one). */
  checks: RegExp[];
}

const RULES: Rule[] = [
  {
    tool: "npm",
    find: /\bnpm\s+(ci|install|i|add|update)\b[^;&|]*/,
    bounds: [
      ["--fetch-timeout", 1000, 300_000],
      ["--fetch-retries", 2, 10],
      ["--fetch-retry-mintimeout", 1, 60_000],
      ["--fetch-retry-maxtimeout", 1, 300_000],
    ],
    loop: true,
    checks: [/test -x node_modules\/\.bin\/\w+/, /npm ls (--all|--omit=dev)/],
  },
  {
    tool: "mvn",
    find: /\bmvnw?\s[^;&|]*/,
    bounds: [
      ["-Daether.connector.connectTimeout", 1000, 120_000],
      ["-Daether.connector.requestTimeout", 1000, 300_000],
      ["-Daether.connector.http.retryHandler.count", 2, 10],
      ["-Dmaven.wagon.http.retryHandler.count", 2, 10],
      ["-Dmaven.wagon.rto", 1000, 300_000],
    ],
    loop: true,
    checks: [/test -s "?\/\S+\.jar"?/, /jar tf/],
  },
  {
    tool: "pip",
    find: /\b(pip3?|python3?(\.\d+)? -m pip)\s+install\b[^;&|]*/,
    bounds: [
      ["--timeout", 1, 300],
      ["--retries", 2, 10],
    ],
    loop: false,
    checks: [/\bpip3? check\b|-m pip check\b/],
  },
  {
    tool: "curl",
    find: /\bcurl\s[^;&|]*/,
    bounds: [
      ["--max-time", 1, 3600],
      ["--retry", 2, 10],
    ],
    loop: false,
    checks: [/sha256sum -c|sha512sum -c/],
  },
  {
    tool: "wget",
    find: /\bwget\s[^;&|]*/,
    bounds: [
      ["--timeout", 1, 300],
      ["--tries", 2, 10],
    ],
    loop: false,
    checks: [/sha256sum -c|sha512sum -c/],
  },
  {
    tool: "apt-get",
    find: /\bapt-get\s+(update|install|upgrade|dist-upgrade)\b[^;&|]*/,
    bounds: [
      ["Acquire::Retries", 2, 10],
      ["Acquire::http::Timeout", 1, 300],
    ],
    loop: false,
    checks: [],
  },
];

/** The problems of one Dockerfile's downloads, one line each (empty: it passes). */
export function lintDownloads(dockerfile: string, name = "Dockerfile"): string[] {
  const problems: string[] = [];
  for (const line of dockerfile.split("\n")) {
    if (/^\s*ADD\s+(--\S+\s+)*https?:/i.test(line)) {
      problems.push(`${name}: ADD <url> downloads with no timeout, retry or check: use a bounded curl in a RUN`);
    }
    if (/^\s*RUN\b.*\b(yarn|pnpm|npx)\s/.test(line)) {
      problems.push(`${name}: yarn, pnpm and npx fetch with no bounds here: use npm ci with the npm rule's flags`);
    }
  }
  // A message (echo "npm ci failed ...") names a tool without running it.
  for (const step of runSteps(dockerfile).map((s) => s.replace(/\becho\s+("[^"]*"|'[^']*')/g, "echo ''"))) {
    if (/\b(yarn|pnpm|npx)\s/.test(step) && !problems.some((p) => p.includes("yarn, pnpm"))) {
      problems.push(`${name}: yarn, pnpm and npx fetch with no bounds here: use npm ci with the npm rule's flags`);
    }
    for (const rule of RULES) {
      const re = new RegExp(rule.find.source, "g");
      for (const m of step.matchAll(re)) {
        const cmd = m[0];
        const at = m.index ?? 0;
        const where = `${name}: \`${cmd.slice(0, 60).trim()}...\``;
        for (const [flag, min, max] of rule.bounds) {
          const v = num(cmd, flag);
          if (v === undefined) problems.push(`${where} lacks ${flag}`);
          else if (v < min || v > max) problems.push(`${where}: ${flag}=${v} is not in [${min}, ${max}]`);
        }
        let after = step.slice(at + cmd.length);
        if (rule.loop) {
          const before = step.slice(0, at);
          const loopAt = before.lastIndexOf("for try in");
          const done = after.search(/\bdone\b/);
          if (loopAt < 0 || done < 0 || before.slice(loopAt).includes(" done")) {
            problems.push(`${where} is not inside a retry loop (for try in ...; do ...; done)`);
          } else {
            // -k: npm, its requests failed, can linger on stalled sockets and past a SIGTERM.
            if (!/\btimeout -k \d+ \d+ $/.test(before)) {
              problems.push(`${where}: a try is not bounded (timeout -k N M ${rule.tool})`);
            }
            after = after.slice(done);
          }
        }
        for (const check of rule.checks) {
          if (!check.test(after)) problems.push(`${where} is not followed in its RUN by a check like ${check.source}`);
        }
      }
    }
  }
  return problems;
}

const dockerfiles = readdirSync(join(REPO, "images"), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => `images/${d.name}/Dockerfile`)
  .filter((p) => {
    try {
      readFileSync(join(REPO, p));
      return true;
    } catch {
      return false;
    }
  });

describe("image builds: every download bounded, retried, and checked before its layer is cached", () => {
  it("finds our Dockerfiles and their downloads", () => {
    assert.ok(dockerfiles.length >= 3, `images/*/Dockerfile: ${dockerfiles.join(" ")}`);
    const all = dockerfiles.map((p) => runSteps(readFileSync(join(REPO, p), "utf8")).join("\n")).join("\n");
    assert.match(all, /\bnpm ci\b/);
    assert.match(all, /\bmvn\b/);
  });

  for (const path of dockerfiles) {
    it(`${path}: no unbounded download`, () => {
      assert.deepEqual(lintDownloads(readFileSync(join(REPO, path), "utf8"), path), []);
    });
  }

  it("the lint refuses an unbounded npm ci, mvn, pip, curl, ADD <url> and a bound that is out of range", () => {
    const bad = [
      "FROM node:20 AS a",
      "RUN npm ci --no-audit",
      "FROM maven:3.9 AS b",
      "RUN mvn -B dependency:copy-dependencies",
      "RUN pip install -r requirements.txt",
      "RUN curl -fsSLo x.tgz https://example.invalid/x.tgz",
      "ADD https://example.invalid/y.tgz /y.tgz",
      "RUN for try in 1 2; do if timeout -k 30 900 npm ci --fetch-timeout=0 --fetch-retries=1 \\",
      "  --fetch-retry-mintimeout=10 --fetch-retry-maxtimeout=100; then break; fi; done; \\",
      "  test -x node_modules/.bin/tsc",
    ].join("\n");
    const problems = lintDownloads(bad);
    for (const want of [
      /`npm ci --no-audit.*lacks --fetch-timeout/,
      /`npm ci --no-audit.*not inside a retry loop/,
      /`npm ci --no-audit.*not followed .*npm ls/,
      /`mvn -B .*lacks -Daether\.connector\.requestTimeout/,
      /`mvn -B .*lacks -Dmaven\.wagon\.rto/,
      /`mvn -B .*not inside a retry loop/,
      /`pip install .*lacks --retries/,
      /`curl .*lacks --max-time/,
      /ADD <url>/,
      /--fetch-timeout=0 is not in/,
      /--fetch-retries=1 is not in/,
    ]) {
      assert.ok(
        problems.some((p) => want.test(p)),
        `no problem matches ${want}: ${problems.join("\n")}`,
      );
    }
  });

  describe("the RUN steps themselves, with fake npm and mvn on PATH", function () {
    this.timeout(60_000);
    let dir = "";
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "image-downloads-"))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** Runs a RUN step with /bin/sh as the build does; `fakes` are scripts put first on PATH. */
    function runStep(step: string, fakes: Record<string, string>, env: Record<string, string> = {}) {
      const bin = join(dir, "bin");
      mkdirSync(bin, { recursive: true });
      // No real waiting between tries.
      for (const [name, body] of Object.entries({ sleep: "exit 0", ...fakes })) {
        writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
      }
      const work = join(dir, "work");
      mkdirSync(work, { recursive: true });
      return spawnSync("/bin/sh", ["-c", step], {
        cwd: work,
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, EXTRA_CA_CERTS: "", ...env },
        timeout: 30_000,
      });
    }

    const workersStep = (): string => {
      const steps = runSteps(readFileSync(join(REPO, "images/workers/Dockerfile"), "utf8"));
      const step = steps.find((s) => /npm ci/.test(s));
      assert.ok(step, "images/workers/Dockerfile runs npm ci");
      return step;
    };

    // A fake npm: `ci` fails while $dir/fails-left counts down (a dropped connection), then
    // installs a tree (complete or cut off); `ls` passes only for a complete tree.
    const fakeNpm = (complete: boolean) =>
      [
        'case "$1" in',
        "ci)",
        '  n="$(cat "$HOME/fails-left" 2>/dev/null || echo 0)"; echo "ci" >>"$HOME/calls"',
        '  if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$HOME/fails-left"; echo "npm ERR! ECONNRESET" >&2; exit 1; fi',
        "  rm -rf node_modules; mkdir -p node_modules/kafkajs",
        complete ? "  mkdir -p node_modules/.bin && : >node_modules/.bin/tsc && chmod +x node_modules/.bin/tsc" : "",
        "  exit 0 ;;",
        'ls) [ -x node_modules/.bin/tsc ] || { echo "npm ERR! missing: typescript" >&2; exit 1; } ;;',
        "esac",
      ].join("\n");

    it("npm ci: two dropped tries, then the third installs and the step passes", () => {
      writeFileSync(join(dir, "fails-left"), "2");
      const r = runStep(workersStep(), { npm: fakeNpm(true) });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, "calls"), "utf8").trim().split("\n").length, 3);
      assert.match(r.stderr, /try 2 of 4 failed/);
    });

    it("npm ci: a try that exits 0 with node_modules cut off (no .bin/tsc) fails the step", () => {
      const r = runStep(workersStep(), { npm: fakeNpm(false) });
      assert.notEqual(r.status, 0, "a half-installed node_modules passed the step (its layer would be cached)");
    });

    it("npm ci: four dropped tries fail the step, with no fifth", () => {
      writeFileSync(join(dir, "fails-left"), "9");
      const r = runStep(workersStep(), { npm: fakeNpm(true) });
      assert.notEqual(r.status, 0);
      assert.equal(readFileSync(join(dir, "calls"), "utf8").trim().split("\n").length, 4);
      assert.match(r.stderr, /npm ci failed 4 times/);
    });

    const sparkStep = (): string => {
      const steps = runSteps(readFileSync(join(REPO, "images/spark/Dockerfile"), "utf8"));
      const step = steps.find((s) => /\bmvn\b/.test(s));
      assert.ok(step, "images/spark/Dockerfile runs mvn");
      // The step writes to /connectors in the image; here, to a folder of the test.
      return step.replaceAll("/connectors", join(dir, "connectors"));
    };

    // A fake mvn: fails while fails-left counts down, then copies the jars named in $HOME/jars.
    const fakeMvn = [
      'n="$(cat "$HOME/fails-left" 2>/dev/null || echo 0)"; echo "mvn" >>"$HOME/calls"',
      'if [ "$n" -gt 0 ]; then echo $((n - 1)) >"$HOME/fails-left"; echo "Connection reset" >&2; exit 1; fi',
      'mkdir -p "$HOME/connectors"',
      'while read -r j; do printf jar >"$HOME/connectors/$j"; done <"$HOME/jars"',
    ].join("\n");
    const jars = (sv: string, cv: string, extra: number) => [
      `spark-sql-kafka-0-10_2.12-${sv}.jar`,
      `spark-token-provider-kafka-0-10_2.12-${sv}.jar`,
      `spark-avro_2.12-${sv}.jar`,
      `spark-cassandra-connector_2.12-${cv}.jar`,
      `spark-cassandra-connector-driver_2.12-${cv}.jar`,
      ...Array.from({ length: extra }, (_, i) => `dep-${i}.jar`),
    ];
    const sparkEnv = { SPARK_VERSION: "3.5.1", CASSANDRA_CONNECTOR_VERSION: "3.5.1", JAVA_HOME: "/nonexistent" };

    it("mvn: a dropped try is repeated, and the jars are checked", () => {
      writeFileSync(join(dir, "fails-left"), "1");
      writeFileSync(join(dir, "jars"), jars("3.5.1", "3.5.1", 20).join("\n") + "\n");
      const r = runStep(sparkStep(), { mvn: fakeMvn, jar: "exit 0" }, sparkEnv);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(join(dir, "calls"), "utf8").trim().split("\n").length, 2);
    });

    it("mvn: a run that exits 0 without a connector jar fails the step", () => {
      const noAvro = jars("3.5.1", "3.5.1", 20).filter((j) => !/spark-avro/.test(j));
      writeFileSync(join(dir, "jars"), noAvro.join("\n") + "\n");
      const r = runStep(sparkStep(), { mvn: fakeMvn, jar: "exit 0" }, sparkEnv);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /missing connector jar .*spark-avro/);
    });

    it("mvn: a truncated jar fails the step", () => {
      writeFileSync(join(dir, "jars"), jars("3.5.1", "3.5.1", 20).join("\n") + "\n");
      const r = runStep(sparkStep(), { mvn: fakeMvn, jar: 'case "$2" in *dep-3.jar) exit 1;; esac' }, sparkEnv);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /broken jar .*dep-3\.jar/);
    });
  });
});
