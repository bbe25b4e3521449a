/**
 * Deterministic fake users in the JSON shape of randomuser.me. A record depends only on
 * (seed, page, index): page 2 of a seed never repeats page 1, and results=10 is a prefix of
 * results=100 for the same seed and page.
 */
import crypto from "node:crypto";
import { FIRST_NAMES, LAST_NAMES, NATIONALITIES, STREET_NAMES, TIMEZONES } from "./vocabulary";
import { intBetween, mulberry32, pick } from "./prng";

export const API_VERSION = "1.4";
/** Ages are computed against this instant, so that output does not change with the clock. */
const REFERENCE_NOW = Date.UTC(2025, 0, 1);
const YEAR_MS = 365.25 * 24 * 3600 * 1000;

export interface RandomUser {
  gender: string;
  name: { title: string; first: string; last: string };
  location: {
    street: { number: number; name: string };
    city: string;
    state: string;
    country: string;
    postcode: number | string;
    coordinates: { latitude: string; longitude: string };
    timezone: { offset: string; description: string };
  };
  email: string;
  login: { uuid: string; username: string; password: string; salt: string; md5: string; sha1: string; sha256: string };
  dob: { date: string; age: number };
  registered: { date: string; age: number };
  phone: string;
  cell: string;
  id: { name: string; value: string | null };
  picture: { large: string; medium: string; thumbnail: string };
  nat: string;
}

export interface ApiResponse {
  results: unknown[];
  info: { seed: string; results: number; page: number; version: string };
}

function recordHash(seed: string, page: number, index: number): Buffer {
  return crypto.createHash("sha256").update(`${seed}\u0000${page}\u0000${index}`).digest();
}

function uuidFrom(h: Buffer): string {
  const b = Buffer.from(h.subarray(0, 16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = b.toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

const hex = (algo: string, s: string) => crypto.createHash(algo).update(s).digest("hex");
const ageAt = (t: number) => Math.floor((REFERENCE_NOW - t) / YEAR_MS);
const ascii = (s: string) =>
  s
    .normalize("NFD")
    .replace(/[^A-Za-z]/g, "")
    .toLowerCase();

export function generateUser(seed: string, page: number, index: number): RandomUser {
  const h = recordHash(seed, page, index);
  const r = mulberry32(h.readUInt32LE(16));
  const gender = r() < 0.5 ? "male" : "female";
  const first = pick(r, FIRST_NAMES[gender]);
  const last = pick(r, LAST_NAMES);
  const title = gender === "male" ? pick(r, ["Mr", "Monsieur"]) : pick(r, ["Ms", "Mrs", "Miss", "Madame"]);
  const n = pick(r, NATIONALITIES);
  const dobMs = REFERENCE_NOW - Math.floor((18 + r() * 60) * YEAR_MS);
  const regMs = REFERENCE_NOW - Math.floor(r() * 20 * YEAR_MS);
  const password = pick(r, ["sunshine", "dragon", "qwerty", "letmein", "monkey", "trustno1"]) + intBetween(r, 0, 999);
  const salt = Array.from({ length: 8 }, () => String.fromCharCode(97 + Math.floor(r() * 26))).join("");
  const portrait = intBetween(r, 0, 99);
  const kind = gender === "male" ? "men" : "women";
  const username = `${pick(r, ["happy", "silver", "brave", "lazy", "tiny", "crazy"])}${pick(r, ["cat", "fox", "owl", "bear", "fish", "wolf"])}${intBetween(r, 100, 999)}`;
  return {
    gender,
    name: { title, first, last },
    location: {
      street: { number: intBetween(r, 1, 9999), name: pick(r, STREET_NAMES) },
      city: pick(r, n.cities),
      state: pick(r, n.states),
      country: n.country,
      postcode: n.numericPostcode
        ? intBetween(r, 1000, 99999)
        : `${String.fromCharCode(65 + intBetween(r, 0, 25))}${intBetween(r, 1, 9)}${String.fromCharCode(65 + intBetween(r, 0, 25))} ${intBetween(r, 1, 9)}${String.fromCharCode(65 + intBetween(r, 0, 25))}${intBetween(r, 1, 9)}`,
      coordinates: { latitude: (r() * 180 - 90).toFixed(4), longitude: (r() * 360 - 180).toFixed(4) },
      timezone: { ...pick(r, TIMEZONES) },
    },
    email: `${ascii(first)}.${ascii(last)}@example.com`,
    login: {
      uuid: uuidFrom(h),
      username,
      password,
      salt,
      md5: hex("md5", password + salt),
      sha1: hex("sha1", password + salt),
      sha256: hex("sha256", password + salt),
    },
    dob: { date: new Date(dobMs).toISOString(), age: ageAt(dobMs) },
    registered: { date: new Date(regMs).toISOString(), age: ageAt(regMs) },
    phone: n.phone(r),
    cell: n.phone(r),
    id: { name: n.idName, value: `${intBetween(r, 100000000, 999999999)}` },
    picture: {
      large: `https://randomuser.me/api/portraits/${kind}/${portrait}.jpg`,
      medium: `https://randomuser.me/api/portraits/med/${kind}/${portrait}.jpg`,
      thumbnail: `https://randomuser.me/api/portraits/thumb/${kind}/${portrait}.jpg`,
    },
    nat: n.nat,
  };
}

/** The ways a record can be broken on purpose, to test the dead-letter paths. */
export const MALFORMATIONS = ["missing-uuid", "bad-uuid", "bad-email", "bad-dob", "no-name"] as const;

/** Fraction in [0, 1) of a record, independent of its content: decides if it is malformed. */
export function malformedDraw(seed: string, page: number, index: number): number {
  return recordHash(seed, page, index).readUInt32LE(24) / 4294967296;
}

export function malform(u: RandomUser, index: number): unknown {
  const kind = MALFORMATIONS[index % MALFORMATIONS.length];
  const c = JSON.parse(JSON.stringify(u)) as Record<string, unknown> & RandomUser;
  switch (kind) {
    case "missing-uuid":
      delete (c.login as Partial<RandomUser["login"]>).uuid;
      break;
    case "bad-uuid":
      c.login.uuid = "not-a-uuid";
      break;
    case "bad-email":
      c.email = "nobody-at-nowhere";
      break;
    case "bad-dob":
      c.dob.date = "yesterday";
      break;
    case "no-name":
      (c as Record<string, unknown>).name = null;
      break;
  }
  return c;
}

export function generatePage(seed: string, page: number, results: number, malformedRate = 0): ApiResponse {
  const out: unknown[] = new Array(results);
  for (let i = 0; i < results; i++) {
    const u = generateUser(seed, page, i);
    out[i] = malformedRate > 0 && malformedDraw(seed, page, i) < malformedRate ? malform(u, i) : u;
  }
  return { results: out, info: { seed, results, page, version: API_VERSION } };
}
