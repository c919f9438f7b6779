/**
 * Exclusive prefix sum of u32 counts (dst[i] = Σ_{j<i} src[j]), for the binning of gather-form
 * gradients. Each workgroup scans a block of 1024 values (4 per thread, then a Hillis–Steele scan of
 * the 256 thread totals in workgroup memory) and writes its block total; the totals are scanned the
 * same way, recursively, and added back to their blocks.
 */
import type { GpuRuntime } from "./runtime.ts";
import { kernel, linearWorkgroups, read, readWrite, WG } from "./wgsl.ts";

const BLOCK = 4 * WG;

const SCAN_BLOCKS = kernel("scanBlocks", () => ({
  params: { n: "u32" },
  buffers: { src: read("u32"), dst: readWrite("u32"), totals: readWrite("u32") },
  declarations: `var<workgroup> sums: array<u32, ${WG}>;`,
  body: /* wgsl */ `
  let block = wid.y * nwg.x + wid.x;
  let base = block * ${BLOCK}u + lid.x * 4u;
  var v: array<u32, 4>;
  var own = 0u;
  for (var k = 0u; k < 4u; k++) {
    v[k] = select(0u, src[base + k], base + k < p.n);
    own += v[k];
  }
  sums[lid.x] = own;
  for (var off = 1u; off < ${WG}u; off <<= 1u) {
    workgroupBarrier();
    let add = select(0u, sums[lid.x - off], lid.x >= off);
    workgroupBarrier();
    sums[lid.x] += add;
  }
  var run = sums[lid.x] - own;
  for (var k = 0u; k < 4u; k++) {
    if (base + k < p.n) { dst[base + k] = run; }
    run += v[k];
  }
  if (lid.x == ${WG - 1}u) { totals[block] = sums[lid.x]; }`,
}));

const ADD_OFFSETS = kernel("scanAddOffsets", () => ({
  params: { n: "u32" },
  buffers: { offsets: read("u32"), dst: readWrite("u32") },
  flat: { index: "i", count: "p.n" },
  body: `  dst[i] += offsets[i / ${BLOCK}u];`,
}));

/** Record dst = exclusive prefix sum of the first n u32 of src. */
export function exclusiveScan(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  const blocks = Math.ceil(n / BLOCK);
  const totals = rt.acquire(blocks * 4);
  SCAN_BLOCKS.record(rt, {
    params: { n },
    buffers: { src, dst, totals },
    workgroups: linearWorkgroups(rt, blocks, 1),
  });
  if (blocks > 1) {
    const offsets = rt.acquire(blocks * 4);
    exclusiveScan(rt, totals, offsets, blocks);
    ADD_OFFSETS.record(rt, { params: { n }, buffers: { offsets, dst }, threads: n });
    rt.release(offsets);
  }
  rt.release(totals);
}
