/** A users_created message → a checked UserCreated, or the reason it is dead-lettered. */
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { userCreatedSchema, type UserCreated } from "../contracts/user-created";
import { zodReason } from "../ingest/source-record";

export type Decoded = { ok: true; user: UserCreated } | { ok: false; reason: string };

/** Check a decoded value against the contract, and that the message key is its id. */
export function checkDecoded(decoded: unknown, key: Buffer | null): Decoded {
  // avsc decodes to a record class instance whose prototype has enumerable helpers: copy own fields
  const plain = decoded !== null && typeof decoded === "object" ? { ...(decoded as Record<string, unknown>) } : decoded;
  const v = userCreatedSchema.safeParse(plain);
  if (!v.success) return { ok: false, reason: `invalid: ${zodReason(v.error)}` };
  if (key && key.toString() !== v.data.id) return { ok: false, reason: `invalid: key ${key.toString()} is not the id ${v.data.id}` };
  return { ok: true, user: v.data };
}

export async function decodeUser(registry: SchemaRegistry, value: Buffer | null, key: Buffer | null): Promise<Decoded> {
  if (!value || value.length === 0) return { ok: false, reason: "decode: empty value" };
  let decoded: unknown;
  try {
    decoded = await registry.decode(value);
  } catch (e) {
    return { ok: false, reason: `decode: ${(e as Error).message}` };
  }
  return checkDecoded(decoded, key);
}
