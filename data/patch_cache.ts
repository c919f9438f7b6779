/**
 * On-disk cache of prepared patch sets, keyed by a SHA-256 of everything that determines them. An entry is
 * written to a temporary file and renamed into place (atomic on one file system), so a run killed mid-write
 * leaves at worst a stray temporary file, never a truncated entry; an unreadable entry is rebuilt.
 *
 * File format: a 4-byte little-endian length, a JSON header of that length listing the sets and their
 * arrays (name, type, element count), padding to a multiple of 4 bytes, then the arrays' bytes in order.
 */
import { join } from "node:path";
import type { PatchSet } from "./patch_set.ts";

/** Bump when the preparation changes in a way the key cannot see, so stale entries are not reused. */
const FORMAT_VERSION = 1;

const ARRAY_TYPES = { Float32Array, Uint8Array, Int32Array };
type ArrayTypeName = keyof typeof ARRAY_TYPES;
type PatchArray = Float32Array | Uint8Array | Int32Array;

interface SetHeader {
  n: number;
  channels: 1 | 3;
  size: number;
  arrays: { name: string; type: ArrayTypeName; length: number }[];
}

/** The default cache folder: `.cache/` at the repository root (git-ignored). */
export const DEFAULT_CACHE_DIR = new URL("../.cache/", import.meta.url).pathname;

export async function cacheKey(parts: unknown): Promise<string> {
  const text = JSON.stringify({ version: FORMAT_VERSION, parts });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("").slice(0, 32);
}

/** Returns the cached sets for `key`, or builds, stores and returns them. */
export async function cachedPatchSets(
  dir: string,
  key: string,
  build: () => Promise<PatchSet[]>,
): Promise<PatchSet[]> {
  const path = join(dir, `patches-${key}.bin`);
  const cached = await readEntry(path);
  if (cached) return cached;
  const sets = await build();
  await Deno.mkdir(dir, { recursive: true });
  const temporary = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(temporary, serialise(sets));
  await Deno.rename(temporary, path);
  return sets;
}

function arraysOf(set: PatchSet): [string, PatchArray][] {
  const arrays: [string, PatchArray | undefined][] = [
    ["images", set.images],
    ["content", set.content],
    ["angles", set.angles],
    ["defects", set.defects],
    ["imageIndex", set.imageIndex],
  ];
  return arrays.filter((entry): entry is [string, PatchArray] => entry[1] !== undefined);
}

function serialise(sets: PatchSet[]): Uint8Array {
  const headers: SetHeader[] = sets.map((set) => ({
    n: set.n,
    channels: set.channels,
    size: set.size,
    arrays: arraysOf(set).map(([name, array]) => ({
      name,
      type: array.constructor.name as ArrayTypeName,
      length: array.length,
    })),
  }));
  const json = new TextEncoder().encode(JSON.stringify(headers));
  const headerBytes = 4 + Math.ceil(json.length / 4) * 4;
  const arrays = sets.flatMap((set) => arraysOf(set).map(([, array]) => array));
  // Each array starts on a 4-byte boundary so it can be viewed in place when read back.
  const padded = (array: PatchArray) => Math.ceil(array.byteLength / 4) * 4;
  const out = new Uint8Array(headerBytes + arrays.reduce((n, a) => n + padded(a), 0));
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  let offset = headerBytes;
  for (const array of arrays) {
    out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), offset);
    offset += padded(array);
  }
  return out;
}

async function readEntry(path: string): Promise<PatchSet[] | null> {
  let bytes;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  try {
    const jsonLength = new DataView(bytes.buffer).getUint32(0, true);
    const headers: SetHeader[] = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + jsonLength)));
    let offset = 4 + Math.ceil(jsonLength / 4) * 4;
    return headers.map(({ arrays, ...set }) => {
      const fields: Record<string, PatchArray> = {};
      for (const { name, type, length } of arrays) {
        const Type = ARRAY_TYPES[type];
        const byteLength = length * Type.BYTES_PER_ELEMENT;
        if (offset + byteLength > bytes.length) throw new Error(`${path} ends inside array ${name}`);
        fields[name] = new Type(bytes.buffer, bytes.byteOffset + offset, length);
        offset += Math.ceil(byteLength / 4) * 4;
      }
      return { ...set, ...fields } as unknown as PatchSet;
    });
  } catch {
    return null;
  }
}
