/**
 * Helpers for the Schema Registry tests (Karapace, as scripts/services runs it): raw REST calls
 * with Confluent's content type, waiting until it takes writes, throwaway subjects, and a value of
 * an Avro record schema built from the schema itself.
 */
import { randomUUID } from "node:crypto";

export const REGISTRY_CT = "application/vnd.schemaregistry.v1+json";

export type RegistryReply = { status: number; body: Record<string, unknown> & { error_code?: number } };

/** One REST call; the body is JSON-encoded; the reply's body parsed (Confluent always answers JSON). */
export async function registryCall(url: string, method: string, path: string, body?: unknown): Promise<RegistryReply> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { "Content-Type": REGISTRY_CT, Accept: REGISTRY_CT },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? {} : (JSON.parse(text) as RegistryReply["body"]) };
}

/**
 * Waits until the registry takes writes: GET /master_available says true (GET /subjects answers 200
 * earlier, while writes still fail with 500 / 50003). Throws after `ms`.
 */
export async function waitWritable(url: string, ms = 120_000): Promise<void> {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until) {
    try {
      const r = await registryCall(url, "GET", "/master_available");
      if (r.body.master_available === true) return;
      last = JSON.stringify(r.body);
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${url} does not take writes after ${ms} ms (last /master_available: ${last})`);
}

/** Subjects named for one test run, deleted (soft, then permanently) by `drop`. */
export class Subjects {
  private readonly made: string[] = [];
  constructor(private readonly prefix: string) {}

  next(): string {
    const s = `${this.prefix}-${randomUUID()}-value`;
    this.made.push(s);
    return s;
  }

  async drop(url: string): Promise<void> {
    for (const s of this.made) {
      await registryCall(url, "DELETE", `/subjects/${s}`);
      await registryCall(url, "DELETE", `/subjects/${s}?permanent=true`);
    }
  }
}

/** A record schema of its own (a unique name), so a test's ids are not shared with earlier runs. */
export function uniqueRecord(fields: { name: string; type: unknown; default?: unknown }[], name?: string): string {
  const n = name ?? `R${randomUUID().replace(/-/g, "")}`;
  return JSON.stringify({ type: "record", name: n, namespace: "registrytest", fields });
}

type AvroType = string | { type: string; [k: string]: unknown } | AvroType[];

/** A value of an Avro record type, built from the schema itself (first non-null branch of unions). */
export function sampleRecord(schema: { fields: { name: string; type: AvroType }[] }): Record<string, unknown> {
  const valueOf = (t: AvroType, name: string): unknown => {
    if (Array.isArray(t)) return t[0] === "null" && t.length > 1 ? valueOf(t[1], name) : valueOf(t[0], name);
    if (typeof t === "object") {
      if (t.logicalType === "timestamp-millis" || t.logicalType === "timestamp-micros") return 1_700_000_000_000;
      if (t.type === "record") return sampleRecord(t as unknown as { fields: { name: string; type: AvroType }[] });
      if (t.type === "enum") return (t.symbols as string[])[0];
      if (t.type === "array") return [valueOf(t.items as AvroType, name)];
      if (t.type === "map") return { k: valueOf(t.values as AvroType, name) };
      return valueOf(t.type, name);
    }
    switch (t) {
      case "string":
        return `${name}-value`;
      case "int":
        return 42;
      case "long":
        return 1_700_000_000_000;
      case "boolean":
        return true;
      case "double":
      case "float":
        return 1.5;
      case "bytes":
        return Buffer.from("x");
      case "null":
        return null;
      default:
        throw new Error(`sampleRecord: unsupported Avro type ${t}`);
    }
  };
  return Object.fromEntries(schema.fields.map((f) => [f.name, valueOf(f.type, f.name)]));
}
