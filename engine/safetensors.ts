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
import type { Backend, DType, Shape } from "./backend.ts";
import { tensor } from "./create.ts";
import { newArray } from "./host.ts";
import type { Tensor } from "./tensor.ts";

const CODES: Record<DType, string> = { float32: "F32", float64: "F64" };
const DTYPES: Record<string, DType> = { F32: "float32", F64: "float64" };
const BYTES: Record<DType, number> = { float32: 4, float64: 8 };

export type Metadata = Record<string, string>;

export interface HostTensor {
  dtype: DType;
  shape: Shape;
  data: Float32Array | Float64Array;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The file's bytes for named host tensors. */
export function encodeSafetensors(tensors: Record<string, HostTensor>, metadata?: Metadata): Uint8Array {
  const names = Object.keys(tensors).sort((a, b) => BYTES[tensors[b].dtype] - BYTES[tensors[a].dtype]);
  const header: Record<string, HeaderEntry | Metadata> = metadata ? { __metadata__: metadata } : {};
  let end = 0;
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    const begin = end;
    end += data.length * BYTES[dtype];
    header[name] = { dtype: CODES[dtype], shape: [...shape], data_offsets: [begin, end] };
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded + end);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length, 8 + padded); // spaces
  for (const name of names) {
    const { dtype, data } = tensors[name];
    const at = 8 + padded + (header[name] as HeaderEntry).data_offsets[0];
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
  function fail(why: string): never {
    throw new Error(`${source}: ${why}`);
  }
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, the header length alone takes 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    fail(`header length ${headerLength} runs past the end of the file (${bytes.length} bytes)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)),
    );
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) fail("header is not a JSON object");
  const { __metadata__: metadata = {}, ...entries } = header as Record<string, unknown>;
  if (typeof metadata !== "object" || Object.values(metadata as object).some((v) => typeof v !== "string")) {
    fail(`__metadata__ must map strings to strings, got ${JSON.stringify(metadata)}`);
  }
  const dataStart = 8 + headerLength, dataLength = bytes.length - dataStart;
  const tensors: Record<string, HostTensor> = {};
  const spans: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(entries)) {
    const { dtype: code, shape, data_offsets: offsets } = raw as HeaderEntry;
    const dtype = DTYPES[code];
    if (!dtype) fail(`tensor "${name}" has dtype ${JSON.stringify(code)}, expected F32 or F64`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      fail(`tensor "${name}" has shape ${JSON.stringify(shape)}, expected a list of sizes`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = Array.isArray(offsets) ? offsets : [NaN, NaN];
    if (
      !(Number.isInteger(begin) && Number.isInteger(end) && 0 <= begin && begin <= end && end <= dataLength)
    ) {
      fail(
        `tensor "${name}" has data_offsets ${JSON.stringify(offsets)} outside the ${dataLength} data bytes`,
      );
    }
    if (end - begin !== count * BYTES[dtype]) {
      fail(
        `tensor "${name}" spans ${end - begin} bytes, its shape [${shape}] of ${code} needs ${
          count * BYTES[dtype]
        }`,
      );
    }
    const data = newArray(dtype, count);
    for (let i = 0; i < count; i++) {
      const at = dataStart + begin + i * BYTES[dtype];
      data[i] = dtype === "float64" ? view.getFloat64(at, true) : view.getFloat32(at, true);
    }
    tensors[name] = { dtype, shape, data };
    spans.push([begin, end, name]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  let covered = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== covered) {
      fail(`tensor "${name}" starts at data byte ${begin}, expected ${covered} (gap or overlap)`);
    }
    covered = end;
  }
  if (covered !== dataLength) fail(`tensors cover ${covered} data bytes, the file holds ${dataLength}`);
  return { tensors, metadata: metadata as Metadata };
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
  const partial = `${path}.partial`;
  await Deno.writeFile(partial, encodeSafetensors(host, metadata));
  await Deno.rename(partial, path);
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
