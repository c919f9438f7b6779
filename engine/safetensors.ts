/**
 * Weights on disk as safetensors (https://github.com/huggingface/safetensors), readable by PyTorch:
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (byte offsets
 * into the data), plus an optional "__metadata__" of string to string. As the reference writer does,
 * the header is padded with spaces so the data starts on an 8-byte boundary, tensors with wider
 * elements come first (so each one is aligned to its element size), and a reader insists that the
 * tensors tile the data exactly. Values are little-endian; only F32 and F64 are supported here.
 */
import type { Backend, DType, Shape, TypedData } from "./backend.ts";
import { tensor } from "./create.ts";
import { writeFileAtomic } from "./atomic_write.ts";
import { newArray } from "./host.ts";
import type { Tensor } from "./tensor.ts";

const CODES: Record<DType, string> = { float32: "F32", float64: "F64" };
const DTYPES: Record<string, DType> = { F32: "float32", F64: "float64" };
const BYTES: Record<DType, number> = { float32: 4, float64: 8 };

export type Metadata = Record<string, string>;

export interface HostTensor {
  dtype: DType;
  shape: Shape;
  data: TypedData;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The file's bytes for named host tensors. */
export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata?: Metadata): Uint8Array {
  const names = Object.keys(tensors).sort((a, b) => BYTES[tensors[b].dtype] - BYTES[tensors[a].dtype]);
  const entries: Record<string, HeaderEntry> = {};
  let end = 0;
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    const begin = end;
    end += data.length * BYTES[dtype];
    entries[name] = { dtype: CODES[dtype], shape: [...shape], data_offsets: [begin, end] };
  }
  const json = new TextEncoder().encode(
    JSON.stringify(metadata ? { __metadata__: metadata, ...entries } : entries),
  );
  const dataStart = 8 + Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(dataStart + end);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(dataStart - 8), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length, dataStart); // spaces
  for (const name of names) {
    const { dtype, data } = tensors[name];
    const at = dataStart + entries[name].data_offsets[0];
    for (let i = 0; i < data.length; i++) {
      if (dtype === "float64") view.setFloat64(at + 8 * i, data[i], true);
      else view.setFloat32(at + 4 * i, data[i], true);
    }
  }
  return bytes;
}

/** Parse a safetensors file's bytes; `source` names the file in errors. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source: string,
): { tensors: Record<string, HostTensor>; metadata: Metadata } {
  try {
    const { entries, metadata, dataStart } = readHeader(bytes);
    const data = new DataView(bytes.buffer, bytes.byteOffset + dataStart, bytes.byteLength - dataStart);
    const tensors: Record<string, HostTensor> = {};
    for (const [name, entry] of Object.entries(entries)) tensors[name] = readTensor(name, entry, data);
    expectTiled(entries, data.byteLength);
    return { tensors, metadata };
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message}`);
  }
}

function readHeader(
  bytes: Uint8Array,
): { entries: Record<string, HeaderEntry>; metadata: Metadata; dataStart: number } {
  if (bytes.length < 8) throw new Error(`truncated: ${bytes.length} bytes, the header length alone takes 8`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    throw new Error(`header length ${headerLength} runs past the end of the file (${bytes.length} bytes)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    );
  } catch (e) {
    throw new Error(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw new Error("header is not a JSON object");
  }
  const { __metadata__: metadata = {}, ...entries } = header as Record<string, unknown>;
  if (
    !metadata || typeof metadata !== "object" || Object.values(metadata).some((v) => typeof v !== "string")
  ) {
    throw new Error(`__metadata__ must map strings to strings, got ${JSON.stringify(metadata)}`);
  }
  return {
    entries: entries as Record<string, HeaderEntry>,
    metadata: metadata as Metadata,
    dataStart: 8 + headerLength,
  };
}

/** One tensor's values, after checking its entry against the data buffer. */
function readTensor(name: string, entry: HeaderEntry | null, data: DataView): HostTensor {
  const { dtype: code, shape, data_offsets: offsets } = entry ?? ({} as HeaderEntry);
  const dtype = DTYPES[code];
  if (!dtype) throw new Error(`tensor "${name}" has dtype ${JSON.stringify(code)}, expected F32 or F64`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`tensor "${name}" has shape ${JSON.stringify(shape)}, expected a list of sizes`);
  }
  const [begin, end] = Array.isArray(offsets) ? offsets : [NaN, NaN];
  if (
    !(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end &&
      end <= data.byteLength)
  ) {
    throw new Error(
      `tensor "${name}" has data_offsets ${
        JSON.stringify(offsets)
      } outside the ${data.byteLength} data bytes`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1), size = BYTES[dtype];
  if (end - begin !== count * size) {
    throw new Error(
      `tensor "${name}" spans ${end - begin} bytes, its shape [${shape}] of ${code} needs ${count * size}`,
    );
  }
  const values = newArray(dtype, count);
  for (let i = 0; i < count; i++) {
    values[i] = dtype === "float64"
      ? data.getFloat64(begin + 8 * i, true)
      : data.getFloat32(begin + 4 * i, true);
  }
  return { dtype, shape, data: values };
}

/** The reference reader's rule: the tensors' byte ranges follow each other and fill the data exactly. */
function expectTiled(entries: Record<string, HeaderEntry>, dataLength: number): void {
  const spans = Object.entries(entries).sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0]);
  let covered = 0;
  for (const [name, { data_offsets: [begin, end] }] of spans) {
    if (begin !== covered) {
      throw new Error(`tensor "${name}" starts at data byte ${begin}, expected ${covered} (gap or overlap)`);
    }
    covered = end;
  }
  if (covered !== dataLength) {
    throw new Error(`tensors cover ${covered} data bytes, the file holds ${dataLength}`);
  }
}

/** Write tensors (from any device) to `path`, atomically: a temporary file renamed into place. */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Metadata,
): Promise<void> {
  const host: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    host[name] = { dtype: t.dtype, shape: t.shape, data: await t.data() };
  }
  await writeFileAtomic(path, encodeSafetensors(host, metadata));
}

/** Read `path` into tensors on `device` (the default device unless given). */
export async function loadSafetensors(
  path: string,
  device?: Backend,
): Promise<{ tensors: Record<string, Tensor>; metadata: Metadata }> {
  const { tensors, metadata } = decodeSafetensors(await Deno.readFile(path), path);
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = tensor(t.data, t.shape, { device, dtype: t.dtype });
  }
  return { tensors: out, metadata };
}
