/** What ingest accepts from the API: the fields it needs of a randomuser record, checked. */
import { z } from "zod";

/** An ISO-8601 date-time WITH its zone (Z or ±hh:mm): without one, Date.parse would read it in local time. */
const isoDate = z
  .string()
  .refine(
    (s) =>
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s) && Number.isFinite(Date.parse(s)),
    "not an ISO-8601 date-time with a zone (Z or ±hh:mm)",
  );

/**
 * An e-mail address, Unicode allowed (real randomuser.me records have them: "josé@exemple.fr"):
 * one @, no spaces or controls, a dot in the domain. zod's .email() is ASCII-only.
 */
export const EMAIL = /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u;
export const email = () => z.string().regex(EMAIL, "Invalid email");

export const sourceUserSchema = z.object({
  gender: z.string(),
  name: z.object({ title: z.string().optional(), first: z.string().min(1), last: z.string().min(1) }),
  location: z.object({
    street: z.object({ number: z.union([z.number(), z.string()]), name: z.string() }),
    city: z.string(),
    state: z.string(),
    country: z.string().min(1),
    postcode: z.union([z.number(), z.string()]),
  }),
  email: email(),
  login: z.object({ uuid: z.string().uuid(), username: z.string().min(1) }),
  dob: z.object({ date: isoDate }),
  registered: z.object({ date: isoDate }),
  phone: z.string(),
  picture: z.object({ medium: z.string() }),
});

export type SourceUser = z.infer<typeof sourceUserSchema>;

export const apiPageSchema = z.object({
  results: z.array(z.unknown()),
  info: z.object({ seed: z.string(), results: z.number(), page: z.number() }).passthrough(),
});

/** The same test as isoDate, for the compiled check below. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
/** zod 3's uuid test (string().uuid()). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isFull = (v: unknown): v is string => typeof v === "string" && v.length > 0;
const isNumOrStr = (v: unknown) => typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
const isIso = (v: unknown) =>
  isObj(v) && typeof v.date === "string" && ISO_DATE.test(v.date) && Number.isFinite(Date.parse(v.date));

/**
 * sourceUserSchema as plain code, for the records that pass (nearly all): zod costs 60–100 µs a
 * record, as much as the rest of ingest's work on it. At least as strict as the schema (a record
 * it accepts, the schema accepts: a unit test holds them together); a record it refuses is
 * handed to the schema, which decides and says why.
 */
export function isSourceUser(v: unknown): v is SourceUser {
  if (!isObj(v) || !isStr(v.gender) || !isStr(v.phone)) return false;
  const { name, location: l, login, picture } = v;
  if (!isObj(name) || !isFull(name.first) || !isFull(name.last) || !(name.title === undefined || isStr(name.title)))
    return false;
  if (!isObj(l) || !isObj(l.street) || !isNumOrStr(l.street.number) || !isStr(l.street.name)) return false;
  if (!isStr(l.city) || !isStr(l.state) || !isFull(l.country) || !isNumOrStr(l.postcode)) return false;
  if (!isStr(v.email) || !EMAIL.test(v.email)) return false;
  if (!isObj(login) || !isStr(login.uuid) || !UUID.test(login.uuid) || !isFull(login.username)) return false;
  return isIso(v.dob) && isIso(v.registered) && isObj(picture) && isStr(picture.medium);
}

/** A readable reason from a zod error: "login.uuid: Invalid uuid; email: Invalid email". */
export function zodReason(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
}
