/**
 * Safetensors: a round trip keeps names, shapes, dtypes and every bit; the layout is the reference
 * one; a file written from a PyTorch nn.Sequential's state_dict loads with its names and shapes; and
 * broken files fail with errors that name the file.
 */
import assert from "node:assert/strict";
import { tensor } from "../engine/create.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
} from "../engine/safetensors.ts";

const TORCH_FILE = new URL("./fixtures/torch_sequential.safetensors", import.meta.url).pathname;

Deno.test("a round trip keeps names, shapes, dtypes, metadata and every bit", async () => {
  const special = [-0, NaN, Infinity, -Infinity, 5e-324, 1 / 3];
  const tensors = {
    "encoder.0.weight": tensor([1.5, -2, 3e-40, 0.1, 7, -0], [2, 3]),
    "encoder.0.bias": tensor(special, [3, 2], { dtype: "float64" }),
    "step": tensor([3], []),
  };
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await saveSafetensors(path, tensors, { format: "pt", step: "3" });
  const loaded = await loadSafetensors(path);
  await Deno.remove(path);
  assert.deepEqual(loaded.metadata, { format: "pt", step: "3" });
  assert.deepEqual(Object.keys(loaded.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const got = loaded.tensors[name];
    assert.deepEqual([got.shape, got.dtype], [t.shape, t.dtype], name);
    assert.ok(got.cpuData().every((v, i) => Object.is(v, t.cpuData()[i])), name);
  }
});

Deno.test("the layout is the reference one: padded header, wider dtypes first, data tiled exactly", () => {
  const bytes = encodeSafetensors({
    a: { dtype: "float32", shape: [3], data: Float32Array.of(1, 2, 3) },
    b: { dtype: "float64", shape: [1], data: Float64Array.of(0.5) },
  });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  assert.equal(headerLength % 8, 0);
  assert.deepEqual(JSON.parse(text), {
    b: { dtype: "F64", shape: [1], data_offsets: [0, 8] },
    a: { dtype: "F32", shape: [3], data_offsets: [8, 20] },
  });
  assert.match(text, /^\{.*\} *$/);
  assert.equal(bytes.length, 8 + headerLength + 20);
});

Deno.test("a file written from a PyTorch nn.Sequential state_dict loads with its names and shapes", async () => {
  const torch: { names: string[]; shapes: number[][] } = JSON.parse(
    await Deno.readTextFile(new URL("./fixtures/torch_sequential.json", import.meta.url)),
  );
  const { tensors, metadata } = await loadSafetensors(TORCH_FILE);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual(Object.keys(tensors), torch.names);
  assert.deepEqual(Object.values(tensors).map((t) => [...t.shape]), torch.shapes);
  assert.ok(Object.values(tensors).every((t) => t.dtype === "float32"));
});

/** A valid file's bytes with its header replaced by `header`, and `dataBytes` bytes of data. */
function withHeader(header: string, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

const BROKEN: [string, Uint8Array, string][] = [
  [
    "a file shorter than its length field",
    new Uint8Array(5),
    "truncated: 5 bytes, the header length alone takes 8",
  ],
  [
    "a header running past the end",
    withHeader("{}", 0).subarray(0, 9),
    "header length 2 runs past the end of the file (9 bytes)",
  ],
  ["a header that is not JSON", withHeader('{"w": {', 0), "header is not valid JSON"],
  ["a header that is not an object", withHeader("[1, 2]", 0), "header is not a JSON object"],
  [
    "an unsupported dtype",
    withHeader('{"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}', 4),
    'tensor "w" has dtype "BF16", expected F32 or F64',
  ],
  [
    "data_offsets out of range",
    withHeader('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', 4),
    'tensor "w" has data_offsets [0,8] outside the 4 data bytes',
  ],
  [
    "data_offsets that disagree with the shape",
    withHeader('{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', 8),
    'tensor "w" spans 8 bytes, its shape [3] of F32 needs 12',
  ],
  [
    "a gap between tensors",
    withHeader('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', 8),
    'tensor "w" starts at data byte 4, expected 0 (gap or overlap)',
  ],
  [
    "trailing data bytes",
    withHeader('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 8),
    "tensors cover 4 data bytes, the file holds 8",
  ],
];

for (const [what, bytes, message] of BROKEN) {
  Deno.test(`safetensors: ${what} is an error naming the file`, () => {
    assert.throws(() => decodeSafetensors(bytes, "broken.safetensors"), (e: Error) => {
      assert.ok(e.message.startsWith(`broken.safetensors: ${message}`), e.message);
      return true;
    });
  });
}

Deno.test("a truncated PyTorch file names its path", async () => {
  const bytes = await Deno.readFile(TORCH_FILE);
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 4));
  await assert.rejects(loadSafetensors(path), (e: Error) => {
    assert.ok(e.message.startsWith(`${path}: tensor "`) && e.message.includes("outside the"), e.message);
    return true;
  });
  await Deno.remove(path);
});
