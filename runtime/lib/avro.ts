/**
 * The Confluent wire format (magic byte 0, schema id as 4 bytes big-endian, Avro binary) done
 * locally with avsc, so that the registry is needed only to learn a schema id once:
 *  - the relay encodes with the schema it registered at start (a registry outage later does not
 *    stop it; a value that does not fit the schema is a ContentError naming the field);
 *  - the processor decodes with the READER schema (ours) resolved from the writer's, so a
 *    BACKWARD-compatible change (a new field with a default) is read, not dead-lettered. Writer
 *    schemas are fetched by id once and cached; a registry that cannot answer is an
 *    InfrastructureError (retry, keep the offset), never a reason to dead-letter.
 */
import avro from "avsc";
import type { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { ContentError, InfrastructureError, describe } from "./errors";

export type AvroType = avro.Type;

export function avroType(schemaJson: string): AvroType {
  return avro.Type.forSchema(JSON.parse(schemaJson) as avro.Schema);
}

/** Encode `value` in the wire format; throws ContentError (with the bad fields) if it does not fit. */
export function encodeFrame(schemaId: number, type: AvroType, value: unknown): Buffer {
  const bad: string[] = [];
  if (!type.isValid(value, { errorHook: (path) => bad.push(path.join(".") || "(record)") })) {
    throw new ContentError(`encode: value does not match the schema at ${[...new Set(bad)].join(", ")}`);
  }
  const body = type.toBuffer(value);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(schemaId, 1);
  body.copy(frame, 5);
  return frame;
}

/** How long "this schema id is unknown" is believed before the registry is asked again. */
const UNKNOWN_ID_TTL_MS = 60_000;
/** How long an id above the subject's latest is waited for (a registry reloading) before it is a reason. */
export const UNKNOWN_ID_GRACE_MS = 20_000;

/**
 * Decodes frames of any registered writer schema into the reader schema.
 * A 404 for a schema id is the message's fault only when the registry is demonstrably whole: it
 * knows `subject` (the subject the pipeline writes). A registry that does not know the subject
 * has restarted empty, is still loading, or lost its data: that is infrastructure (wait, keep the
 * offset), never a reason to dead-letter good records.
 * A registry still loading may know the subject but not yet its newer ids (Karapace reads
 * `_schemas` in order after a restart: a fault run dead-lettered 12,700 good records on "schema
 * id 5 is not in the registry" while it answered with the subject at an older id). Ids are given
 * in increasing order, so a 404 for an id at or below the subject's latest is the message's fault
 * at once; above it, the id is waited for (infrastructure) for `unknownGraceMs` from its first
 * 404, then it is a reason (a foreign or made-up id must not stop its partition for good).
 */
export class FrameDecoder {
  private readonly resolvers = new Map<number, { resolver: avro.Resolver } | { error: string; until: number }>();
  /** When each id above the subject's latest was first answered 404. */
  private readonly firstUnknown = new Map<number, number>();

  constructor(
    private readonly registry: SchemaRegistry,
    readonly reader: AvroType,
    private readonly subject?: string,
    private readonly unknownGraceMs = UNKNOWN_ID_GRACE_MS,
  ) {}

  /** The subject's latest schema id; undefined when the registry does not know the subject. */
  private async subjectLatest(): Promise<number | undefined> {
    if (!this.subject) return Number.POSITIVE_INFINITY;
    try {
      return await this.registry.getLatestSchemaId(this.subject);
    } catch (e) {
      if ((e as { status?: number }).status === 404) return undefined;
      throw new InfrastructureError(`schema registry: subject ${this.subject}: ${describe(e)}`, { cause: e });
    }
  }

  /** Fetch (and cache) the writer schema of `id`; load the latest at start to fail fast. */
  async load(id: number): Promise<void> {
    const cached = this.resolvers.get(id);
    if (cached && ("resolver" in cached || cached.until > Date.now())) return;
    let writer: AvroType;
    try {
      writer = (await this.registry.getSchema(id)) as unknown as AvroType;
    } catch (e) {
      const status = (e as { status?: number }).status;
      if (status === 404) {
        const latest = await this.subjectLatest();
        if (latest === undefined) {
          throw new InfrastructureError(
            `schema registry does not know ${this.subject} (restarted empty or still loading): schema ${id} cannot be fetched`,
          );
        }
        if (id > latest) {
          const first = this.firstUnknown.get(id) ?? Date.now();
          this.firstUnknown.set(id, first);
          if (Date.now() - first < this.unknownGraceMs) {
            throw new InfrastructureError(
              `schema registry does not know schema ${id} (its latest for ${this.subject} is ${latest}: still loading?); waiting up to ${this.unknownGraceMs} ms before it is a reason`,
            );
          }
        }
        this.resolvers.set(id, {
          error: `decode: schema id ${id} is not in the registry`,
          until: Date.now() + UNKNOWN_ID_TTL_MS,
        });
        return;
      }
      throw new InfrastructureError(`schema registry: schema ${id}: ${describe(e)}`, { cause: e });
    }
    this.firstUnknown.delete(id);
    try {
      this.resolvers.set(id, { resolver: this.reader.createResolver(writer) });
    } catch (e) {
      this.resolvers.set(id, {
        error: `decode: writer schema ${id} cannot be read as ${this.reader.name ?? "the reader schema"}: ${(e as Error).message}`,
        until: Number.POSITIVE_INFINITY,
      });
    }
  }

  /** The schema id of a frame in the wire format, or undefined when it is not one. */
  private static idOf(frame: Buffer | null): number | undefined {
    return frame && frame.length >= 6 && frame.readUInt8(0) === 0 ? frame.readUInt32BE(1) : undefined;
  }

  /** The schema id of a frame in the wire format; ContentError when it is not one. */
  private static schemaId(frame: Buffer | null): number {
    if (!frame || frame.length === 0) throw new ContentError("decode: empty value");
    const id = FrameDecoder.idOf(frame);
    if (id === undefined)
      throw new ContentError("decode: not in the Confluent wire format (magic byte 0, schema id, Avro)");
    return id;
  }

  /**
   * Load the writer schemas of `frames` (each id once), so that decodeLoaded() can decode them
   * without a wait per message. Frames that are not in the wire format are skipped here (their
   * decodeLoaded() names why); an unreachable registry throws InfrastructureError.
   */
  async loadFor(frames: Iterable<Buffer | null>): Promise<void> {
    const ids = new Set<number>();
    for (const f of frames) {
      const id = FrameDecoder.idOf(f);
      if (id !== undefined) ids.add(id);
    }
    for (const id of ids) await this.load(id);
  }

  /**
   * The value of a frame whose schema id loadFor() or load() has already loaded, in the reader's
   * shape, without a wait; ContentError for bad bytes or an id known to be bad, InfrastructureError
   * for an id not loaded.
   */
  decodeLoaded(frame: Buffer | null): unknown {
    const id = FrameDecoder.schemaId(frame);
    const r = this.resolvers.get(id);
    if (!r) throw new InfrastructureError(`schema ${id} not loaded`);
    if ("error" in r) throw new ContentError(r.error);
    try {
      return this.reader.fromBuffer(frame!.subarray(5), r.resolver);
    } catch (e) {
      throw new ContentError(`decode: ${(e as Error).message}`);
    }
  }
}
