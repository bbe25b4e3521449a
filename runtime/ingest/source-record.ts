/** What ingest accepts from the API: the fields it needs of a randomuser record, checked. */
import { z } from "zod";

const isoDate = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}T/.test(s) && Number.isFinite(Date.parse(s)), "not an ISO-8601 date-time");

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
  email: z.string().email(),
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

/** A readable reason from a zod error: "login.uuid: Invalid uuid; email: Invalid email". */
export function zodReason(e: z.ZodError): string {
  return e.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
}
