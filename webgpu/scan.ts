/**
 * Exclusive prefix sum of u32 counts (dst[i] = Σ_{j<i} src[j]), for the binning of gather-form
 * gradients. Each workgroup scans a block of 1024 values (4 per thread, then a Hillis–Steele scan of
 * the 256 thread totals in workgroup memory) and writes its block total; the totals are scanned the
 * same way, recursively, and added back to their blocks.
 */
import { FLAT_INDEX_WGSL, type GpuRuntime, linearWorkgroups, Params } from "./runtime.ts";

const WG = 256;
const BLOCK = 4 * WG;

const SCAN_BLOCKS = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> totals: array<u32>;
var<workgroup> sums: array<u32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
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
  if (lid.x == ${WG - 1}u) { totals[block] = sums[lid.x]; }
}`;

const ADD_OFFSETS = /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> offsets: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${FLAT_INDEX_WGSL(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = flatIndex(wid, nwg, lid);
  if (i < p.n) { dst[i] += offsets[i / ${BLOCK}u]; }
}`;

/** Record dst = exclusive prefix sum of the first n u32 of src. */
export function exclusiveScan(rt: GpuRuntime, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  const blocks = Math.ceil(n / BLOCK);
  const totals = rt.acquire(blocks * 4);
  rt.dispatch({
    key: "scanBlocks",
    source: () => SCAN_BLOCKS,
    params: new Params().u32(n),
    buffers: [src, dst, totals],
    workgroups: linearWorkgroups(rt, blocks, 1),
  });
  if (blocks > 1) {
    const offsets = rt.acquire(blocks * 4);
    exclusiveScan(rt, totals, offsets, blocks);
    rt.dispatch({
      key: "scanAddOffsets",
      source: () => ADD_OFFSETS,
      params: new Params().u32(n),
      buffers: [offsets, dst],
      workgroups: linearWorkgroups(rt, n, WG),
    });
    rt.release(offsets);
  }
  rt.release(totals);
}
