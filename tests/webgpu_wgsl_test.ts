/**
 * The WGSL scaffold (webgpu/wgsl.ts): the struct and bindings it writes, the host packing against the
 * shader's own reading of it (mixed scalars and `dims`, whose 16-byte alignment the WGSL layout rules
 * decide), the pipeline-key check of WGSL_CHECK, and WGSL_DUMP.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { WebGPUBackend } from "../webgpu/runtime.ts";
import { kernel, read, readWrite, render } from "../webgpu/wgsl.ts";
import { TEST_DEVICES } from "./devices.ts";

const entry = TEST_DEVICES.find((d) => d.name === "webgpu");
const test = (name: string, fn: (gpu: WebGPUBackend) => void | Promise<void>) =>
  Deno.test({
    name: `webgpu wgsl: ${name}`,
    ignore: !entry,
    fn: async () => fn(await entry!.get() as WebGPUBackend),
  });

Deno.test("wgsl: params become struct P, buffers bind from 1 in order, a null buffer is left out", () => {
  const source = render("example", {
    params: { n: "u32", scale: "f32", shape: "dims" },
    buffers: { x: read("vec4f"), bias: null, y: readWrite() },
    flat: { index: "i", count: "p.n" },
    body: "  y[i] = x[i].x * p.scale;",
  });
  assert.match(source, /^\/\/ example\n/);
  assert.match(source, /struct P \{ n: u32, scale: f32, shape: array<vec4u, 2> \}/);
  assert.match(source, /@group\(0\) @binding\(0\) var<uniform> p: P;/);
  assert.match(source, /@binding\(1\) var<storage, read> x: array<vec4f>;/);
  assert.match(source, /@binding\(2\) var<storage, read_write> y: array<f32>;/);
  assert.doesNotMatch(source, /bias/);
  assert.match(source, /fn dim\(/);
  assert.match(
    source,
    /@compute @workgroup_size\(256\)\nfn main\(.*\) \{\n {2}let i = flatIndex\(wid, nwg, lid\);/,
  );
  assert.match(source, /if \(i >= p\.n\) \{ return; \}\n {2}y\[i\] = x\[i\]\.x \* p\.scale;\n\}/);
});

Deno.test("wgsl: two kernels may not share a name (their pipeline keys would collide)", () => {
  kernel("wgsl test: unique", () => ({ buffers: {}, body: "" }));
  assert.throws(
    () => kernel("wgsl test: unique", () => ({ buffers: {}, body: "" })),
    /two kernels are named/,
  );
});

/** Echoes every params field to `out` as u32 bits: the host packing read back through the shader's struct. */
const ECHO = kernel("wgsl test: echo params", () => ({
  params: { a: "u32", b: "f32", shape: "dims", c: "i32", offset: "dims", d: "u32" },
  buffers: { out: readWrite("u32") },
  workgroupSize: 1,
  body: /* wgsl */ `
  out[0] = p.a; out[1] = bitcast<u32>(p.b); out[2] = bitcast<u32>(p.c); out[3] = p.d;
  for (var k = 0u; k < 8u; k++) { out[4u + k] = dim(p.shape, k); out[12u + k] = bitcast<u32>(idim(p.offset, k)); }`,
}));

test("the host packs params exactly where the shader's struct reads them", async (gpu) => {
  const rt = gpu.runtime, out = rt.acquire(20 * 4);
  ECHO.record(rt, {
    params: { a: 7, b: 1.5, shape: [2, 3, 5], c: -4, offset: [-1, 0, 9, 1, 2, 3, 4, 5], d: 11 },
    buffers: { out },
    workgroups: [1],
  });
  const got = new Uint32Array(await rt.read(out, 20 * 4));
  rt.release(out);
  const f32 = new Float32Array(new Uint32Array([got[1]]).buffer)[0];
  const i32 = new Int32Array(got.buffer);
  assert.deepEqual([got[0], f32, i32[2], got[3]], [7, 1.5, -4, 11]);
  assert.deepEqual([...got.subarray(4, 12)], [2, 3, 5, 0, 0, 0, 0, 0]);
  assert.deepEqual([...i32.subarray(12, 20)], [-1, 0, 9, 1, 2, 3, 4, 5]);
});

test("params that do not fit their declaration are refused with the kernel's name", (gpu) => {
  const out = gpu.runtime.acquire(80);
  const params = { a: 1, b: 1, shape: [1], c: 1, offset: [1, 2, 3, 4, 5, 6, 7, 8, 9], d: 1 };
  assert.throws(
    () => ECHO.record(gpu.runtime, { params, buffers: { out }, workgroups: [1] }),
    /echo.*MAX_RANK/,
  );
  gpu.runtime.release(out);
});

test("WGSL_CHECK: a key that leaves out what its source depends on throws", (gpu) => {
  const rt = gpu.runtime, saved = rt.checkSources;
  let hidden = "1u"; // read by the shader but not part of its variant: the bug the check is for
  const LEAKY = kernel("wgsl test: leaky key", () => ({
    buffers: { out: readWrite("u32") },
    workgroupSize: 1,
    body: `  out[0] = ${hidden};`,
  }));
  const out = rt.acquire(16);
  try {
    rt.checkSources = true;
    LEAKY.record(rt, { buffers: { out }, workgroups: [1] });
    LEAKY.record(rt, { buffers: { out }, workgroups: [1] });
    hidden = "2u";
    assert.throws(
      () => LEAKY.record(rt, { buffers: { out }, workgroups: [1] }),
      /key "wgsl test: leaky key" was built from one WGSL source and is now asked for another/,
    );
  } finally {
    rt.checkSources = saved;
    rt.release(out);
  }
});

test("WGSL_DUMP: each shader is written to the folder when its pipeline is built", async (gpu) => {
  const rt = gpu.runtime, saved = rt.dumpDir, dir = await Deno.makeTempDir();
  const DUMPED = kernel("wgsl test: dumped", (value: number) => ({
    buffers: { out: readWrite("u32") },
    workgroupSize: 1,
    body: `  out[0] = ${value}u;`,
  }));
  const out = rt.acquire(16);
  try {
    rt.dumpDir = dir;
    for (const value of [3, 4, 3]) DUMPED.record(rt, { variant: value, buffers: { out }, workgroups: [1] });
  } finally {
    rt.dumpDir = saved;
    rt.release(out);
  }
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.equal(files.length, 2, `one file per pipeline: ${files}`);
  for (const [i, value] of [3, 4].entries()) {
    assert.match(files[i], /^wgsl_test_dumped_\d\.[0-9a-f]{8}\.wgsl$/);
    assert.equal(Deno.readTextFileSync(join(dir, files[i])), DUMPED.source(value));
  }
  await Deno.remove(dir, { recursive: true });
});
