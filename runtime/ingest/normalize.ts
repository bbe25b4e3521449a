/**
 * One API record → one UserCreated value, or the reason it cannot be. One pass of plain checks
 * (isSourceUser, isUserCreated) for the records that pass; the zod schemas only for a record that
 * fails one of them, to decide and say why.
 */
import { isUserCreated, userCreatedSchema, type UserCreated } from "../contracts/user-created";
import { isPgStorableJson, unstorablePath } from "../lib/pg-text";
import { isSourceUser, sourceUserSchema, zodReason, type SourceUser } from "./source-record";

export type Normalized = { ok: true; user: UserCreated } | { ok: false; reason: string };

export function normalizeUser(raw: unknown, fetchedAt: number): Normalized {
  // a NUL fails the page's transaction (PostgreSQL text), forever; a lone surrogate would be stored
  // as U+FFFD, another value than the API's: the record is rejected, in a value or a key alike
  if (!isPgStorableJson(raw)) {
    const bad = unstorablePath(raw);
    return {
      ok: false,
      reason: `${bad?.path ?? "(record)"}: contains ${bad?.what ?? "a character PostgreSQL cannot store"}`,
    };
  }
  let u: SourceUser;
  if (isSourceUser(raw)) u = raw;
  else {
    const s = sourceUserSchema.safeParse(raw);
    if (!s.success) return { ok: false, reason: zodReason(s.error) };
    u = s.data;
  }
  const l = u.location;
  const candidate = {
    id: u.login.uuid.toLowerCase(),
    first_name: u.name.first,
    last_name: u.name.last,
    gender: u.gender,
    address: `${l.street.number} ${l.street.name}, ${l.city}, ${l.state}, ${l.country}`,
    country: l.country,
    post_code: String(l.postcode),
    email: u.email,
    username: u.login.username,
    dob: Date.parse(u.dob.date),
    registered_date: Date.parse(u.registered.date),
    phone: u.phone,
    picture: u.picture.medium,
    fetched_at: fetchedAt,
  };
  if (isUserCreated(candidate)) return { ok: true, user: candidate };
  const c = userCreatedSchema.safeParse(candidate);
  if (!c.success) return { ok: false, reason: zodReason(c.error) };
  return { ok: true, user: c.data };
}
