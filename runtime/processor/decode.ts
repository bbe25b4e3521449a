/**
 * A users_created message → a checked UserCreated, or the reason it is dead-lettered.
 * Only content problems become reasons; a registry that cannot answer throws (the caller retries
 * and keeps the offset).
 */
import { isUserCreated, userCreatedSchema, type UserCreated } from "../contracts/user-created";
import { zodReason } from "../ingest/source-record";
import type { FrameDecoder } from "../lib/avro";
import { ContentError, SchemaLostError } from "../lib/errors";

export type Decoded = { ok: true; user: UserCreated } | { ok: false; reason: string };

/** Check a decoded value against the contract, and that the message key is its id. */
export function checkDecoded(decoded: unknown, key: Buffer | null): Decoded {
  let user: UserCreated;
  const rec = decoded as Record<string, unknown>;
  if (decoded !== null && typeof decoded === "object" && isUserCreated(rec)) {
    user = rec; // the hot path: the plain check passed, the schema is asked only why a value fails
  } else {
    // avsc decodes to a record class instance whose prototype has enumerable helpers: copy own fields
    const plain =
      decoded !== null && typeof decoded === "object" ? { ...(decoded as Record<string, unknown>) } : decoded;
    const v = userCreatedSchema.safeParse(plain);
    if (!v.success) return { ok: false, reason: `invalid: ${zodReason(v.error)}` };
    user = v.data;
  }
  if (key && key.toString() !== user.id)
    return { ok: false, reason: `invalid: key ${key.toString()} is not the id ${user.id}` };
  return { ok: true, user };
}

/** FrameDecoder's reasons about the writer schema itself, not the record's bytes. */
const SCHEMA_REASONS = [
  /^decode: schema id (\d+) is not in the registry/,
  /^decode: writer schema (\d+) cannot be read as/,
];

/**
 * A message whose writer schema is loaded (FrameDecoder.loadFor) → a checked user or a reason.
 * Throws InfrastructureError when the schema is not loaded (never a reason). A message of our own
 * relay (`fromRelay`: it has an outbox_id header) was written with the id the registry gave our
 * schema: when the registry no longer knows that id, or answers it with a schema that cannot be
 * read as UserCreated, the registry lost or reassigned it (SchemaLostError), the record is good.
 */
export function decodeUserLoaded(
  decoder: FrameDecoder,
  value: Buffer | null,
  key: Buffer | null,
  fromRelay = false,
): Decoded {
  let decoded: unknown;
  try {
    decoded = decoder.decodeLoaded(value);
  } catch (e) {
    if (!(e instanceof ContentError)) throw e;
    const lost = fromRelay ? SCHEMA_REASONS.map((re) => re.exec(e.reason)).find((m) => m) : undefined;
    if (lost) {
      const why = `schema registry lost or reassigned schema id ${lost[1]} of our relay's records (${e.reason}):`;
      throw new SchemaLostError(Number(lost[1]), `${why} the partition stops until the registry is repaired`);
    }
    return { ok: false, reason: e.reason };
  }
  return checkDecoded(decoded, key);
}

/** Throws InfrastructureError when the writer schema cannot be fetched (never a reason). */
export async function decodeUser(
  decoder: FrameDecoder,
  value: Buffer | null,
  key: Buffer | null,
  fromRelay = false,
): Promise<Decoded> {
  await decoder.loadFor([value]);
  return decodeUserLoaded(decoder, value, key, fromRelay);
}
