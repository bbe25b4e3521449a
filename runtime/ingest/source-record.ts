/** What ingest accepts from the API: the fields it needs of a randomuser record, checked. */
import { z } from "zod";

/** An ISO-8601 date-time WITH its zone (Z or ±hh:mm): without one, Date.parse would read it in local time. */
const isoDate = z
  .string()
  .refine((s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s) && Number.isFinite(Date.parse(s)), "not an ISO-8601 date-time with a zone (Z or ±hh:mm)");

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

/** The first path holding a NUL character (PostgreSQL text cannot store one), or undefined. */
export function nulPath(v: unknown, path: string[] = []): string | undefined {
  if (typeof v === "string") return v.includes("\u0000") ? path.join(".") || "(record)" : undefined;
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const p = nulPath(x, [...path, k]);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

/** A readable reason from a zod error: "login.uuid: Invalid uuid; email: Invalid email". */
export function zodReason(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
}
