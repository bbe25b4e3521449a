/**
 * The job runner (infra/targets/docker-job.ts) against a fake engine that answers as Docker 29
 * does: 400 "client version … is too old" on any path below /v1.44, /version unversioned. The
 * fake listens on a unix socket in a temp dir and on 127.0.0.1 (plain and TLS); ssh:// goes
 * through a fake `ssh` on PATH that bridges stdio to the socket, as `docker system dial-stdio`
 * does on the remote side. No Docker engine needed.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { JobRun, runContainer } from "../../../infra/targets/docker-job";

interface Engine {
  version: string;
  apiVersion: string;
  minApiVersion: string;
  /** Container id → its exit code and log lines (stdout, then stderr). */
  containers: Record<string, { exit: number; stdout?: string[]; stderr?: string[] }>;
}

const DOCKER_29: Omit<Engine, "containers"> = { version: "29.0.1", apiVersion: "1.52", minApiVersion: "1.44" };
const cmpApi = (a: string, b: string) => {
  const [x, y] = [a, b].map((v) => v.split(".").map(Number));
  return x[0] - y[0] || x[1] - y[1];
};

/** One multiplexed log frame: stream (1 stdout, 2 stderr), three zero bytes, the size, the bytes. */
function frame(streamId: number, line: string): Buffer {
  const body = Buffer.from(`${line}\n`);
  const head = Buffer.alloc(8);
  head[0] = streamId;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** A request handler that answers as the engine described; `seen` gets "METHOD path" of each call. */
function fakeEngine(engine: Engine, seen: string[]): http.RequestListener {
  return (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? "/", "http://engine");
    if (req.method === "GET" && url.pathname === "/version") {
      const { version, apiVersion, minApiVersion } = engine;
      return json(200, { Version: version, ApiVersion: apiVersion, MinAPIVersion: minApiVersion });
    }
    const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(url.pathname);
    const [api, rest] = m ? [m[1], m[2]] : [engine.apiVersion, url.pathname];
    if (cmpApi(api, engine.minApiVersion) < 0) {
      return json(400, {
        message:
          `client version ${api} is too old. Minimum supported API version is ${engine.minApiVersion}, ` +
          "please upgrade your client to a newer version",
      });
    }
    if (cmpApi(api, engine.apiVersion) > 0) {
      const message = `client version ${api} is too new. Maximum supported API version is ${engine.apiVersion}`;
      return json(400, { message });
    }
    const c = /^\/containers\/([^/]+)\/(start|wait|logs)$/.exec(rest);
    const container = c ? engine.containers[c[1]] : undefined;
    if (!c || !container) return json(404, { message: `No such container: ${c?.[1] ?? rest}` });
    if (c[2] === "start" && req.method === "POST") {
      res.writeHead(204);
      return res.end();
    }
    if (c[2] === "wait" && req.method === "POST") return json(200, { StatusCode: container.exit, Error: null });
    if (c[2] === "logs" && req.method === "GET") {
      const tail = Number(url.searchParams.get("tail") ?? "all");
      const frames = [
        ...(container.stdout ?? []).map((l) => frame(1, l)),
        ...(container.stderr ?? []).map((l) => frame(2, l)),
      ];
      res.writeHead(200, { "content-type": "application/vnd.docker.multiplexed-stream" });
      return res.end(Buffer.concat(Number.isFinite(tail) ? frames.slice(-tail) : frames));
    }
    return json(405, { message: "method not allowed" });
  };
}

const listen = (server: http.Server, at: string | number): Promise<void> =>
  new Promise((resolve, reject) => {
    server.once("error", reject);
    if (typeof at === "string") server.listen(at, resolve);
    else server.listen(at, "127.0.0.1", resolve);
  });
const close = (server: http.Server) => new Promise<void>((resolve) => server.close(() => resolve()));
const portOf = (server: http.Server) => (server.address() as AddressInfo).port;
/** An environment with none of the caller's Docker settings, so a developer's DOCKER_* cannot leak in. */
const cleanEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("DOCKER_"))),
  ...extra,
});
const rejection = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail("expected the run to fail");
};

describe("infra: the Docker job runner speaks to engines as users have them", () => {
  let dir: string;
  let seen: string[];
  let engine: Engine;
  let onSocket: http.Server;
  let onTcp: http.Server;
  let socket: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "docker-job-"));
    seen = [];
    engine = {
      ...DOCKER_29,
      containers: {
        ok: { exit: 0, stdout: ["done"] },
        failing: {
          exit: 3,
          stdout: Array.from({ length: 60 }, (_, i) => `line ${i + 1}`),
          stderr: ["Error: topic users_created: replication factor 3 larger than available brokers 1"],
        },
      },
    };
    socket = path.join(dir, "docker.sock");
    onSocket = http.createServer(fakeEngine(engine, seen));
    onTcp = http.createServer(fakeEngine(engine, seen));
    await listen(onSocket, socket);
    await listen(onTcp, 0);
  });

  afterEach(async () => {
    await Promise.all([close(onSocket), close(onTcp)]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("on Docker 29 (unix socket) asks /version, then starts and waits at the lower of its API and ours", async () => {
    const code = await runContainer("kafka-topics", "ok", cleanEnv({ DOCKER_HOST: `unix://${socket}` }));
    assert.equal(code, 0);
    assert.deepEqual(seen, ["GET /version", "POST /v1.47/containers/ok/start", "POST /v1.47/containers/ok/wait"]);
  });

  it("speaks an older engine's own version (Docker 24, API 1.43) over plain tcp", async () => {
    Object.assign(engine, { version: "24.0.9", apiVersion: "1.43", minApiVersion: "1.12" });
    const env = cleanEnv({ DOCKER_HOST: `tcp://127.0.0.1:${portOf(onTcp)}` });
    const code = await runContainer("kafka-topics", "ok", env);
    assert.equal(code, 0);
    assert.deepEqual(seen.slice(1), ["POST /v1.43/containers/ok/start", "POST /v1.43/containers/ok/wait"]);
  });

  it("fails a non-zero exit with the code and the last 40 lines of its log, stderr included", async () => {
    const env = cleanEnv({ DOCKER_HOST: `tcp://127.0.0.1:${portOf(onTcp)}` });
    const e = await rejection(runContainer("kafka-topics", "failing", env));
    assert.match(e.message, /^job kafka-topics exited with code 3; it runs again on the next `pulumi up`/);
    const log = e.message.split("Last lines of its log:\n")[1];
    assert.ok(log, e.message);
    const lines = log.split("\n");
    assert.equal(lines.length, 40, log);
    assert.equal(lines[0], "line 22");
    assert.equal(lines[39], "Error: topic users_created: replication factor 3 larger than available brokers 1");
    assert.deepEqual(seen.slice(-1), ["GET /v1.47/containers/failing/logs?stdout=1&stderr=1&tail=40"]);
  });

  it("refuses an engine older than its floor with a clear error, before touching the container", async () => {
    Object.assign(engine, { version: "18.09.9", apiVersion: "1.39", minApiVersion: "1.12" });
    const e = await rejection(runContainer("airflow-init", "ok", cleanEnv({ DOCKER_HOST: `unix://${socket}` })));
    assert.match(e.message, /^job airflow-init: the Docker engine at unix:\/\/\S+ \(unix socket \S+\)/);
    assert.match(e.message, /is Docker 18\.09\.9 with Engine API 1\.39; this job runner needs API 1\.40 .* upgrade/);
    assert.deepEqual(seen, ["GET /version"]);
  });

  it("says so when the engine's minimum API is above the newest it speaks", async () => {
    Object.assign(engine, { version: "40.0.0", apiVersion: "1.70", minApiVersion: "1.60" });
    const e = await rejection(runContainer("airflow-init", "ok", cleanEnv({ DOCKER_HOST: `unix://${socket}` })));
    assert.match(e.message, /accepts Engine API 1\.60 and newer; this job runner speaks up to 1\.47: raise OURS/);
    assert.deepEqual(seen, ["GET /version"]);
  });

  it("says what it tried, how, and what to check when the engine cannot be reached", async () => {
    const missing = path.join(dir, "nothing.sock");
    const e1 = await rejection(runContainer("kafka-topics", "ok", cleanEnv({ DOCKER_HOST: `unix://${missing}` })));
    const tried = `cannot reach the Docker engine at unix://${missing} \\(unix socket ${missing}\\)`;
    assert.match(e1.message, new RegExp(tried));
    assert.match(e1.message, /ENOENT.*Check that the engine runs .*docker group/);

    const port = portOf(onTcp);
    await close(onTcp);
    onTcp = http.createServer();
    const host = `tcp://127.0.0.1:${port}`;
    const e2 = await rejection(runContainer("kafka-topics", "ok", cleanEnv({ DOCKER_HOST: host })));
    assert.match(e2.message, new RegExp(`cannot reach the Docker engine at ${host} \\(tcp, plain HTTP`));
    assert.match(e2.message, /ECONNREFUSED.*DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH/);
    await listen(onTcp, 0);

    const e3 = await rejection(runContainer("kafka-topics", "ok", cleanEnv({ DOCKER_HOST: "127.0.0.1:2375" })));
    assert.match(e3.message, /DOCKER_HOST=127\.0\.0\.1:2375 is not a form the docker provider accepts: unix:.*ssh:/);
  });

  describe("over tcp with TLS (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)", () => {
    let certs: string;
    let onTls: https.Server;
    let clientNames: string[];

    before(function () {
      try {
        execFileSync("openssl", ["version"], { stdio: "ignore" });
      } catch {
        this.skip();
      }
    });

    beforeEach(async () => {
      certs = path.join(dir, "certs");
      fs.mkdirSync(certs);
      const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: certs, stdio: "pipe" });
      const key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      ssl("req", "-x509", ...key, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test CA");
      const sign = (name: string, subject: string, ext: string) => {
        fs.writeFileSync(path.join(certs, `${name}.ext`), ext);
        ssl("req", ...key, "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject);
        ssl(
          "x509",
          "-req",
          "-in",
          `${name}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca-key.pem",
          "-CAcreateserial",
          "-out",
          `${name}.pem`,
          "-days",
          "1",
          "-extfile",
          `${name}.ext`,
        );
      };
      sign("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
      sign("cert", "/CN=client", "extendedKeyUsage=clientAuth\n");
      fs.renameSync(path.join(certs, "cert-key.pem"), path.join(certs, "key.pem"));
      const read = (f: string) => fs.readFileSync(path.join(certs, f));
      // As dockerd --tlsverify: only clients with a certificate from its CA.
      clientNames = [];
      const handler = fakeEngine(engine, seen);
      onTls = https.createServer(
        { ca: read("ca.pem"), cert: read("server.pem"), key: read("server-key.pem"), requestCert: true },
        (req, res) => {
          const peer = (req.socket as import("node:tls").TLSSocket).getPeerCertificate();
          clientNames.push(String(peer.subject?.CN));
          handler(req, res);
        },
      );
      await listen(onTls, 0);
    });

    afterEach(() => close(onTls));

    it("verifies the engine with ca.pem and shows it cert.pem, at the negotiated version", async () => {
      const env = cleanEnv({
        DOCKER_HOST: `tcp://127.0.0.1:${portOf(onTls)}`,
        DOCKER_TLS_VERIFY: "1",
        DOCKER_CERT_PATH: certs,
      });
      assert.equal(await runContainer("kafka-topics", "ok", env), 0);
      assert.deepEqual(seen, ["GET /version", "POST /v1.47/containers/ok/start", "POST /v1.47/containers/ok/wait"]);
      assert.deepEqual(clientNames, ["client", "client", "client"]);
    });

    it("names the TLS form and the certificates when they do not fit the engine", async () => {
      const other = path.join(dir, "other");
      fs.mkdirSync(other);
      for (const f of ["cert.pem", "key.pem"]) fs.copyFileSync(path.join(certs, f), path.join(other, f));
      fs.copyFileSync(path.join(certs, "cert.pem"), path.join(other, "ca.pem")); // not the CA that signed the engine
      const env = cleanEnv({
        DOCKER_HOST: `tcp://127.0.0.1:${portOf(onTls)}`,
        DOCKER_TLS_VERIFY: "1",
        DOCKER_CERT_PATH: other,
      });
      const e = await rejection(runContainer("kafka-topics", "ok", env));
      assert.match(e.message, new RegExp(`\\(tcp with TLS, certificates from ${other}\\)`));
      assert.match(e.message, /certificate.*Check that the engine listens there with TLS, that the certificates/);
      assert.deepEqual(seen, []);
    });

    it("without the TLS settings says it tried plain HTTP and what to set", async () => {
      const env = cleanEnv({ DOCKER_HOST: `tcp://127.0.0.1:${portOf(onTls)}` });
      const e = await rejection(runContainer("kafka-topics", "ok", env));
      assert.match(e.message, /\(tcp, plain HTTP .*DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH/);
    });
  });

  describe("over ssh (ssh … docker system dial-stdio, as the Docker CLI and the docker provider do)", () => {
    let bin: string;
    let calls: string;

    beforeEach(() => {
      bin = path.join(dir, "bin");
      calls = path.join(dir, "ssh-calls");
      fs.mkdirSync(bin);
      // Stands in for ssh + the remote `docker system dial-stdio`: stdio bridged to the engine's socket.
      fs.writeFileSync(
        path.join(bin, "ssh"),
        `#!${process.execPath}
const fs = require("node:fs");
const net = require("node:net");
fs.appendFileSync(process.env.FAKE_SSH_CALLS, JSON.stringify(process.argv.slice(2)) + "\\n");
if (process.env.FAKE_SSH_DENY) {
  process.stderr.write("me@127.0.0.1: Permission denied (publickey).\\n");
  process.exit(255);
}
const engine = net.connect(process.env.FAKE_DOCKER_SOCK);
process.stdin.pipe(engine);
engine.pipe(process.stdout);
engine.on("close", () => process.exit(0));
`,
        { mode: 0o755 },
      );
    });

    const sshEnv = (extra: Record<string, string> = {}) =>
      cleanEnv({
        DOCKER_HOST: "ssh://me@127.0.0.1:2222",
        PATH: `${bin}${path.delimiter}${process.env.PATH}`,
        FAKE_SSH_CALLS: calls,
        FAKE_DOCKER_SOCK: socket,
        ...extra,
      });

    it("runs the job through `ssh -l me -p 2222 -- 127.0.0.1 docker system dial-stdio`", async () => {
      const e = await rejection(runContainer("kafka-topics", "failing", sshEnv({ DOCKER_SSH_OPTS: "-i /tmp/k" })));
      assert.match(e.message, /exited with code 3;[^]*replication factor 3 larger than available brokers 1$/);
      assert.deepEqual(seen, [
        "GET /version",
        "POST /v1.47/containers/failing/start",
        "POST /v1.47/containers/failing/wait",
        "GET /v1.47/containers/failing/logs?stdout=1&stderr=1&tail=40",
      ]);
      const argv = fs
        .readFileSync(calls, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as string[]);
      assert.equal(argv.length, 4, "one ssh session per connection");
      assert.deepEqual(argv[0], [
        "-i",
        "/tmp/k",
        "-o",
        "ConnectTimeout=30",
        "-T",
        "-l",
        "me",
        "-p",
        "2222",
        "--",
        "127.0.0.1",
        "docker",
        "system",
        "dial-stdio",
      ]);
    });

    it("shows what ssh said when it cannot get through", async () => {
      const e = await rejection(runContainer("kafka-topics", "ok", sshEnv({ FAKE_SSH_DENY: "1" })));
      assert.match(e.message, /cannot reach the Docker engine at ssh:\/\/me@127\.0\.0\.1:2222 \(ssh: `ssh .*stdio`\)/);
      assert.match(e.message, /works without a prompt/);
      assert.match(e.message, /ssh said:\nme@127\.0\.0\.1: Permission denied \(publickey\)\.$/);
      assert.deepEqual(seen, []);
    });
  });

  /** Declares one JobRun under mocks with the given stack config; answers the inputs it registered with. */
  const declared = async (config: Record<string, string>, secretKeys: string[] = []) => {
    const inputs: Record<string, unknown>[] = [];
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          if (args.type.endsWith(":JobRun")) inputs.push(args.inputs);
          return { id: `${args.name}-id`, state: args.inputs };
        },
        call: (args) => args.inputs,
      },
      "realtime-pipeline",
      "dev",
      false,
    );
    pulumi.runtime.setAllConfig(config, secretKeys);
    try {
      const run = new JobRun("kafka-topics-run", { name: "kafka-topics", containerId: "ok" });
      await new Promise((resolve) => run.urn.apply(resolve));
    } finally {
      pulumi.runtime.setAllConfig({});
    }
    assert.equal(inputs.length, 1);
    return inputs[0] as { __provider: string; engine?: unknown };
  };
  const load = (text: string, file: string) => {
    fs.writeFileSync(path.join(dir, file), text);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(path.join(dir, file)) as Record<string, () => unknown>;
  };

  it("takes the docker provider's stack config (docker:host) over DOCKER_HOST, as the provider does", async () => {
    const inputs = await declared({ "docker:host": `unix://${socket}`, "docker:sshOpts": '["-i","/tmp/k"]' });
    assert.deepEqual(inputs.engine, { DOCKER_HOST: `unix://${socket}`, DOCKER_SSH_OPTS: "-i /tmp/k" });
    // The provider as the dynamic-provider process loads it, in an environment that points elsewhere.
    const provider = load(inputs.__provider, "jobrun-provider.js").handler() as pulumi.dynamic.ResourceProvider;
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = `unix://${path.join(dir, "elsewhere.sock")}`;
    try {
      const made = await provider.create!({ name: "kafka-topics", containerId: "ok", engine: inputs.engine });
      assert.equal(made.outs.exitCode, 0);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    assert.deepEqual(seen, ["GET /version", "POST /v1.47/containers/ok/start", "POST /v1.47/containers/ok/wait"]);
    assert.equal((await declared({})).engine, undefined, "no docker config: nothing carried, DOCKER_* apply");
  });

  it("keeps the provider's TLS material secret in the run's inputs", async () => {
    const host = "tcp://127.0.0.1:2376";
    // Not marked secret in the stack config: the key still must not land in the state in plain text.
    const inputs = await declared({ "docker:host": host, "docker:certMaterial": "CERT", "docker:keyMaterial": "KEY" });
    const wrapped = inputs.engine as Record<string, unknown>;
    // Pulumi's wire form of a secret (sdk/nodejs/runtime/rpc.ts).
    assert.equal(wrapped["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270");
    assert.deepEqual(wrapped.value, { DOCKER_HOST: host, DOCKER_CERT_MATERIAL: "CERT", DOCKER_KEY_MATERIAL: "KEY" });
  });

  it("still works once Pulumi serialized it for the dynamic provider's process (all required inside)", async () => {
    // As the dynamic provider does (serializeFunction(() => provider)), the function alone, not this module.
    const runner = runContainer;
    const sf = await pulumi.runtime.serializeFunction(() => runner);
    const serialized = load(sf.text, "runner.js")[sf.exportName]() as typeof runContainer;
    assert.notEqual(serialized, runner);
    const code = await serialized("kafka-topics", "ok", cleanEnv({ DOCKER_HOST: `unix://${socket}` }));
    assert.equal(code, 0);
    assert.deepEqual(seen, ["GET /version", "POST /v1.47/containers/ok/start", "POST /v1.47/containers/ok/wait"]);
  });
});
