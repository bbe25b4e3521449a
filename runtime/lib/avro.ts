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
import { ContentError, InfrastructureError, classify, describe } from "./errors";

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

/** Decodes frames of any registered writer schema into the reader schema. */
export class FrameDecoder {
  private readonly resolvers = new Map<number, { resolver: avro.Resolver } | { error: string }>();

  constructor(private readonly registry: SchemaRegistry, readonly reader: AvroType) {}

  /** Fetch (and cache) the writer schema of `id`; load the latest at start to fail fast. */
  async load(id: number): Promise<void> {
    if (this.resolvers.has(id)) return;
    let writer: AvroType;
    try {
      writer = (await this.registry.getSchema(id)) as unknown as AvroType;
    } catch (e) {
      const status = (e as { status?: number }).status;
      const body = describe(e);
      // 404 with error_code 40403: no such schema id. Anything else is the registry's trouble.
      if (status === 404 && /404|not found/i.test(body)) {
        this.resolvers.set(id, { error: `decode: schema id ${id} is not in the registry` });
        return;
      }
      if (classify(e) === "programming" || classify(e) === "infrastructure") {
        throw new InfrastructureError(`schema registry: schema ${id}: ${body}`, { cause: e });
      }
      throw e;
    }
    try {
      this.resolvers.set(id, { resolver: this.reader.createResolver(writer) });
    } catch (e) {
      this.resolvers.set(id, { error: `decode: writer schema ${id} cannot be read as ${this.reader.name ?? "the reader schema"}: ${(e as Error).message}` });
    }
  }

  /** The value in the reader's shape; ContentError for bad bytes; InfrastructureError if the registry is away. */
  async decode(frame: Buffer | null): Promise<unknown> {
    if (!frame || frame.length === 0) throw new ContentError("decode: empty value");
    if (frame.length < 6 || frame.readUInt8(0) !== 0) throw new ContentError("decode: not in the Confluent wire format (magic byte 0, schema id, Avro)");
    const id = frame.readUInt32BE(1);
    await this.load(id);
    const r = this.resolvers.get(id);
    if (!r) throw new InfrastructureError(`schema ${id} not loaded`);
    if ("error" in r) throw new ContentError(r.error);
    try {
      return this.reader.fromBuffer(frame.subarray(5), r.resolver);
    } catch (e) {
      throw new ContentError(`decode: ${(e as Error).message}`);
    }
  }
}
