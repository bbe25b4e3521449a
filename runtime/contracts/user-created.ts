/**
 * The UserCreated value (runtime/contracts/user-created.avsc) as a TypeScript type and a zod
 * schema, and the .avsc text itself for registration. Timestamps are epoch milliseconds.
 */
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL_RE = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
const ms = z.number().int().min(-62_135_596_800_000).max(253_402_300_799_999);

export const userCreatedSchema = z
  .object({
    id: z.string().regex(UUID, "id must be a UUID"),
    first_name: z.string().min(1),
    last_name: z.string().min(1),
    gender: z.string(),
    address: z.string(),
    country: z.string(),
    post_code: z.string(),
    // Unicode allowed, as ingest accepts it (runtime/ingest/source-record.ts EMAIL)
    email: z.string().regex(EMAIL_RE, "Invalid email"),
    username: z.string().min(1),
    dob: ms,
    registered_date: ms,
    phone: z.string(),
    picture: z.string(),
    fetched_at: ms,
  })
  .strict();

export type UserCreated = z.infer<typeof userCreatedSchema>;

const isMs = (v: unknown) =>
  Number.isInteger(v) && (v as number) >= -62_135_596_800_000 && (v as number) <= 253_402_300_799_999;

/**
 * userCreatedSchema as plain code, for the hot paths (ingest builds a value per record, the
 * processor checks each one it decodes): at least as strict as the schema on a value's own
 * fields (a unit test holds them together); on false, ask the schema why.
 */
export function isUserCreated(v: Record<string, unknown>): v is UserCreated {
  // own keys only: avsc's record instances carry enumerable helpers on their prototype
  for (const k of Object.keys(v)) if (!(USER_CREATED_FIELDS as readonly string[]).includes(k)) return false;
  const s = (k: string) => typeof v[k] === "string";
  const full = (k: string) => typeof v[k] === "string" && (v[k] as string).length > 0;
  return (
    typeof v.id === "string" &&
    UUID.test(v.id) &&
    full("first_name") &&
    full("last_name") &&
    s("gender") &&
    s("address") &&
    s("country") &&
    s("post_code") &&
    typeof v.email === "string" &&
    EMAIL_RE.test(v.email) &&
    full("username") &&
    isMs(v.dob) &&
    isMs(v.registered_date) &&
    s("phone") &&
    s("picture") &&
    isMs(v.fetched_at)
  );
}

/** Field names in schema order (the Cassandra columns, the PostgreSQL users columns). */
export const USER_CREATED_FIELDS = [
  "id",
  "first_name",
  "last_name",
  "gender",
  "address",
  "country",
  "post_code",
  "email",
  "username",
  "dob",
  "registered_date",
  "phone",
  "picture",
  "fetched_at",
] as const satisfies readonly (keyof UserCreated)[];

export const TIMESTAMP_FIELDS = ["dob", "registered_date", "fetched_at"] as const;

/** The .avsc text. Found beside this module in the sources, or in the repo when run from dist/. */
export function userCreatedAvsc(): string {
  const candidates = [
    path.join(__dirname, "user-created.avsc"),
    path.join(__dirname, "..", "..", "..", "runtime", "contracts", "user-created.avsc"),
  ];
  for (const p of candidates) if (fs.existsSync(p)) return fs.readFileSync(p, "utf8");
  throw new Error(`user-created.avsc not found (looked in ${candidates.join(", ")})`);
}
