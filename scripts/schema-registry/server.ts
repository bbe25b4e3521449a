/**
 * Local Schema Registry speaking Confluent's REST API (the part that Kafka clients and
 * @kafkajs/confluent-schema-registry use), for Avro schemas, stored in PostgreSQL.
 *
 * WHY THIS EXISTS: neither registry the design names installs on these machines. Karapace is not
 * served by PyPI here, and Apicurio Registry's app on Maven Central cannot be assembled: its
 * dependency io.apicurio:apicurio-registry-schema-util-provider is not published there (no
 * version), and older 2.x versions need jars that are only on other repositories. Confluent's own
 * registry is not on Maven Central. The stacks run Confluent's cp-schema-registry image; this
 * server exists only for the local services of scripts/services, and keeps Confluent's semantics
 * where the pipeline depends on them:
 *   - global schema ids, the same id for the same schema under any subject;
 *   - versions per subject, registration idempotent for an identical schema;
 *   - compatibility levels (BACKWARD default, FORWARD, FULL, *_TRANSITIVE, NONE) checked with
 *     Avro schema resolution (avsc), 409 on an incompatible schema;
 *   - Confluent's error bodies {error_code, message} and codes (40401, 40402, 40403, 42201, ...).
 * Not implemented: JSON Schema and Protobuf (422), schema references, modes other than READWRITE.
 *
 *   SR_PORT=8081 PGHOST=.. PGPORT=.. PGDATABASE=.. PGUSER=.. PGPASSWORD=.. \
 *     node --require tsx/cjs scripts/schema-registry/server.ts
 */
import { createServer, IncomingMessage, ServerResponse } from "node:http";
import { Pool, PoolClient } from "pg";
import { Type } from "avsc";

const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";
const LEVELS = [
  "NONE",
  "BACKWARD",
  "BACKWARD_TRANSITIVE",
  "FORWARD",
  "FORWARD_TRANSITIVE",
  "FULL",
  "FULL_TRANSITIVE",
] as const;
type Level = (typeof LEVELS)[number];
const DEFAULT_LEVEL: Level = "BACKWARD";

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
const subjectNotFound = (s: string) => new HttpError(404, 40401, `Subject '${s}' not found.`);
const versionNotFound = (v: string) => new HttpError(404, 40402, `Version ${v} not found.`);
const schemaNotFound = () => new HttpError(404, 40403, "Schema not found");

const DDL = `
CREATE TABLE IF NOT EXISTS sr_schemas (
  id          serial PRIMARY KEY,
  schema_type text NOT NULL DEFAULT 'AVRO',
  schema      text NOT NULL,
  UNIQUE (schema_type, schema)
);
CREATE TABLE IF NOT EXISTS sr_subject_versions (
  subject   text    NOT NULL,
  version   integer NOT NULL,
  schema_id integer NOT NULL REFERENCES sr_schemas(id),
  deleted   boolean NOT NULL DEFAULT false,
  PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS sr_config (
  subject       text PRIMARY KEY,  -- '' is the global level
  compatibility text NOT NULL
);`;

/**
 * Parses an Avro schema; returns its avsc type and the text stored and compared: the schema as
 * given, with JSON whitespace removed (every attribute kept: doc, logicalType, ...), as
 * Confluent's registry stores a schema's canonical string.
 */
export function parseAvro(text: string): { type: Type; canonical: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(422, 42201, "Invalid schema: not JSON");
  }
  try {
    const type = Type.forSchema(json as never);
    return { type, canonical: JSON.stringify(json) };
  } catch (err) {
    throw new HttpError(422, 42201, `Invalid schema: ${(err as Error).message}`);
  }
}

/** Can data written with `writer` be read with `reader`? (Avro schema resolution.) */
function canRead(reader: Type, writer: Type): boolean {
  try {
    reader.createResolver(writer);
    return true;
  } catch {
    return false;
  }
}

/** Confluent's rules: `previous` is newest-first; non-transitive levels look at the latest only. */
export function isCompatible(level: Level, candidate: Type, previous: Type[]): boolean {
  if (level === "NONE" || previous.length === 0) return true;
  const against = level.endsWith("_TRANSITIVE") ? previous : previous.slice(0, 1);
  const backward = level.startsWith("BACKWARD") || level.startsWith("FULL");
  const forward = level.startsWith("FORWARD") || level.startsWith("FULL");
  return against.every((old) => (!backward || canRead(candidate, old)) && (!forward || canRead(old, candidate)));
}

export class Registry {
  constructor(private readonly pool: Pool) {}

  async init(): Promise<void> {
    await this.pool.query(DDL);
  }

  private async tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const out = await fn(c);
      await c.query("COMMIT");
      return out;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async subjects(deleted: boolean): Promise<string[]> {
    const r = await this.pool.query<{ subject: string }>(
      `SELECT DISTINCT subject FROM sr_subject_versions WHERE $1 OR NOT deleted ORDER BY subject`,
      [deleted],
    );
    return r.rows.map((x) => x.subject);
  }

  async versions(subject: string, deleted = false): Promise<number[]> {
    const r = await this.pool.query<{ version: number }>(
      `SELECT version FROM sr_subject_versions WHERE subject = $1 AND ($2 OR NOT deleted) ORDER BY version`,
      [subject, deleted],
    );
    if (r.rowCount === 0) throw subjectNotFound(subject);
    return r.rows.map((x) => x.version);
  }

  async version(subject: string, v: string) {
    const latest = v === "latest" || v === "-1";
    if (!latest && !/^\d+$/.test(v)) throw new HttpError(422, 42202, `The specified version '${v}' is not a valid version id.`);
    await this.versions(subject); // 40401 first, as Confluent does
    const r = await this.pool.query<{ version: number; id: number; schema: string; schema_type: string }>(
      `SELECT sv.version, s.id, s.schema, s.schema_type FROM sr_subject_versions sv JOIN sr_schemas s ON s.id = sv.schema_id
        WHERE sv.subject = $1 AND NOT sv.deleted AND ($2 OR sv.version = $3)
        ORDER BY sv.version DESC LIMIT 1`,
      [subject, latest, latest ? 0 : Number(v)],
    );
    const row = r.rows[0];
    if (!row) throw versionNotFound(v);
    return { subject, version: row.version, id: row.id, schema: row.schema };
  }

  async schemaById(id: number) {
    const r = await this.pool.query<{ schema: string }>(`SELECT schema FROM sr_schemas WHERE id = $1`, [id]);
    if (!r.rows[0]) throw schemaNotFound();
    return { schema: r.rows[0].schema };
  }

  async subjectsVersionsOf(id: number) {
    await this.schemaById(id);
    const r = await this.pool.query<{ subject: string; version: number }>(
      `SELECT subject, version FROM sr_subject_versions WHERE schema_id = $1 AND NOT deleted ORDER BY subject, version`,
      [id],
    );
    return r.rows;
  }

  async level(subject: string | undefined, c: Pool | PoolClient = this.pool): Promise<Level> {
    const r = await c.query<{ subject: string; compatibility: Level }>(
      `SELECT subject, compatibility FROM sr_config WHERE subject = ANY($1)`,
      [subject === undefined ? [""] : [subject, ""]],
    );
    const own = r.rows.find((x) => x.subject === subject);
    const global = r.rows.find((x) => x.subject === "");
    return own?.compatibility ?? global?.compatibility ?? DEFAULT_LEVEL;
  }

  async subjectLevel(subject: string): Promise<Level | undefined> {
    const r = await this.pool.query<{ compatibility: Level }>(`SELECT compatibility FROM sr_config WHERE subject = $1`, [subject]);
    return r.rows[0]?.compatibility;
  }

  async setLevel(subject: string, level: unknown): Promise<Level> {
    const l = String(level ?? "").toUpperCase();
    if (!(LEVELS as readonly string[]).includes(l)) throw new HttpError(422, 42203, `Invalid compatibility level: ${String(level)}`);
    await this.pool.query(
      `INSERT INTO sr_config(subject, compatibility) VALUES ($1, $2)
       ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility`,
      [subject, l],
    );
    return l as Level;
  }

  async deleteLevel(subject: string): Promise<Level> {
    const r = await this.pool.query<{ compatibility: Level }>(`DELETE FROM sr_config WHERE subject = $1 RETURNING compatibility`, [subject]);
    if (!r.rows[0]) throw subjectNotFound(subject);
    return r.rows[0].compatibility;
  }

  private async previousTypes(subject: string, c: Pool | PoolClient): Promise<Type[]> {
    const r = await c.query<{ schema: string }>(
      `SELECT s.schema FROM sr_subject_versions sv JOIN sr_schemas s ON s.id = sv.schema_id
        WHERE sv.subject = $1 AND NOT sv.deleted ORDER BY sv.version DESC`,
      [subject],
    );
    return r.rows.map((x) => parseAvro(x.schema).type);
  }

  async register(subject: string, body: RegisterBody): Promise<{ id: number }> {
    const { canonical, type } = parseBody(body);
    return this.tx(async (c) => {
      // One registration per subject at a time (several relays may start together).
      await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [subject]);
      const existing = await c.query<{ id: number }>(
        `SELECT s.id FROM sr_subject_versions sv JOIN sr_schemas s ON s.id = sv.schema_id
          WHERE sv.subject = $1 AND NOT sv.deleted AND s.schema = $2 LIMIT 1`,
        [subject, canonical],
      );
      if (existing.rows[0]) return { id: existing.rows[0].id };
      const level = await this.level(subject, c);
      if (!isCompatible(level, type, await this.previousTypes(subject, c))) {
        throw new HttpError(409, 409, `Schema being registered is incompatible with an earlier schema for subject "${subject}" (${level})`);
      }
      const ins = await c.query<{ id: number }>(
        `INSERT INTO sr_schemas(schema_type, schema) VALUES ('AVRO', $1)
         ON CONFLICT (schema_type, schema) DO UPDATE SET schema = EXCLUDED.schema RETURNING id`,
        [canonical],
      );
      const id = ins.rows[0].id;
      await c.query(
        `INSERT INTO sr_subject_versions(subject, version, schema_id)
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2 FROM sr_subject_versions WHERE subject = $1`,
        [subject, id],
      );
      return { id };
    });
  }

  async lookup(subject: string, body: RegisterBody) {
    const { canonical } = parseBody(body);
    await this.versions(subject);
    const r = await this.pool.query<{ version: number; id: number; schema: string }>(
      `SELECT sv.version, s.id, s.schema FROM sr_subject_versions sv JOIN sr_schemas s ON s.id = sv.schema_id
        WHERE sv.subject = $1 AND NOT sv.deleted AND s.schema = $2 ORDER BY sv.version LIMIT 1`,
      [subject, canonical],
    );
    if (!r.rows[0]) throw schemaNotFound();
    return { subject, ...r.rows[0] };
  }

  async compatible(subject: string, v: string, body: RegisterBody): Promise<{ is_compatible: boolean }> {
    const { type } = parseBody(body);
    let previous: Type[];
    if (v === "latest") {
      const r = await this.previousTypes(subject, this.pool);
      previous = r;
    } else {
      previous = [parseAvro((await this.version(subject, v)).schema).type];
    }
    return { is_compatible: isCompatible(await this.level(subject), type, previous) };
  }

  async deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    const versions = await this.versions(subject, permanent);
    if (permanent) {
      await this.pool.query(`DELETE FROM sr_subject_versions WHERE subject = $1`, [subject]);
      await this.pool.query(`DELETE FROM sr_config WHERE subject = $1`, [subject]);
    } else {
      await this.pool.query(`UPDATE sr_subject_versions SET deleted = true WHERE subject = $1`, [subject]);
    }
    return versions;
  }

  async deleteVersion(subject: string, v: string, permanent: boolean): Promise<number> {
    const { version } = permanent && /^\d+$/.test(v) ? { version: Number(v) } : await this.version(subject, v);
    const r = permanent
      ? await this.pool.query(`DELETE FROM sr_subject_versions WHERE subject = $1 AND version = $2`, [subject, version])
      : await this.pool.query(`UPDATE sr_subject_versions SET deleted = true WHERE subject = $1 AND version = $2`, [subject, version]);
    if (r.rowCount === 0) throw versionNotFound(v);
    return version;
  }
}

interface RegisterBody {
  schema?: unknown;
  schemaType?: unknown;
  references?: unknown;
}

function parseBody(body: RegisterBody): { type: Type; canonical: string } {
  if (typeof body?.schema !== "string") throw new HttpError(422, 42201, "Invalid schema: 'schema' must be a string");
  const t = body.schemaType === undefined || body.schemaType === null ? "AVRO" : String(body.schemaType).toUpperCase();
  if (t !== "AVRO") throw new HttpError(422, 42201, `Invalid schema: schema type ${t} is not supported by this local registry (AVRO only)`);
  if (Array.isArray(body.references) && body.references.length > 0) {
    throw new HttpError(422, 42201, "Invalid schema: schema references are not supported by this local registry");
  }
  return parseAvro(body.schema);
}

async function readJson(req: IncomingMessage): Promise<RegisterBody & Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024 * 1024) throw new HttpError(413, 413, "Request body too large");
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as RegisterBody & Record<string, unknown>;
  } catch {
    throw new HttpError(400, 400, "Malformed JSON body");
  }
}

export function handler(registry: Registry) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { "Content-Type": CONTENT_TYPE, "Content-Length": Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
      const m = req.method ?? "GET";
      const flag = (name: string) => url.searchParams.get(name) === "true";
      const [a, b, c, d, e] = parts;

      if (parts.length === 0 && m === "GET") return send(200, {});
      if (a === "subjects") {
        if (!b && m === "GET") return send(200, await registry.subjects(flag("deleted")));
        if (b && !c && m === "POST") return send(200, await registry.lookup(b, await readJson(req)));
        if (b && !c && m === "DELETE") return send(200, await registry.deleteSubject(b, flag("permanent")));
        if (b && c === "versions") {
          if (!d && m === "GET") return send(200, await registry.versions(b, flag("deleted")));
          if (!d && m === "POST") return send(200, await registry.register(b, await readJson(req)));
          if (d && !e && m === "GET") return send(200, await registry.version(b, d));
          if (d && e === "schema" && m === "GET") {
            const v = await registry.version(b, d);
            res.writeHead(200, { "Content-Type": CONTENT_TYPE });
            return void res.end(v.schema);
          }
          if (d && !e && m === "DELETE") return send(200, await registry.deleteVersion(b, d, flag("permanent")));
        }
      }
      if (a === "schemas") {
        if (b === "types" && !c && m === "GET") return send(200, ["AVRO"]);
        if (b === "ids" && c && /^\d+$/.test(c)) {
          if (!d && m === "GET") return send(200, await registry.schemaById(Number(c)));
          if (d === "schema" && m === "GET") {
            const s = await registry.schemaById(Number(c));
            res.writeHead(200, { "Content-Type": CONTENT_TYPE });
            return void res.end(s.schema);
          }
          if (d === "versions" && m === "GET") return send(200, await registry.subjectsVersionsOf(Number(c)));
        }
      }
      if (a === "config") {
        if (!b && m === "GET") return send(200, { compatibilityLevel: await registry.level(undefined) });
        if (!b && m === "PUT") return send(200, { compatibility: await registry.setLevel("", (await readJson(req)).compatibility) });
        if (b && m === "GET") {
          const own = await registry.subjectLevel(b);
          if (own) return send(200, { compatibilityLevel: own });
          if (flag("defaultToGlobal")) return send(200, { compatibilityLevel: await registry.level(undefined) });
          throw new HttpError(404, 40408, `Subject '${b}' does not have subject-level compatibility configured`);
        }
        if (b && m === "PUT") return send(200, { compatibility: await registry.setLevel(b, (await readJson(req)).compatibility) });
        if (b && m === "DELETE") return send(200, { compatibilityLevel: await registry.deleteLevel(b) });
      }
      if (a === "compatibility" && b === "subjects" && c && d === "versions" && e && m === "POST") {
        return send(200, await registry.compatible(c, e, await readJson(req)));
      }
      if (a === "mode" && m === "GET") return send(200, { mode: "READWRITE" });
      throw new HttpError(404, 404, `HTTP 404 Not Found: ${m} ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, { error_code: err.code, message: err.message });
      process.stderr.write(`${new Date().toISOString()} ERROR ${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}\n`);
      return send(500, { error_code: 50001, message: `Error in the backend data store: ${(err as Error).message}` });
    }
  };
}

async function main(): Promise<void> {
  const port = Number(process.env.SR_PORT ?? 8081);
  const host = process.env.SR_HOST ?? "127.0.0.1";
  const pool = new Pool({ max: 8 }); // PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD
  const registry = new Registry(pool);
  await registry.init();
  const server = createServer((req, res) => void handler(registry)(req, res));
  server.listen(port, host, () => {
    process.stdout.write(`${new Date().toISOString()} INFO schema registry listening on http://${host}:${port}\n`);
  });
  const stop = () => {
    process.stdout.write(`${new Date().toISOString()} INFO stopping\n`);
    server.close(() => void pool.end().then(() => process.exit(0)));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${new Date().toISOString()} ERROR ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
