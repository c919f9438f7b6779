/**
 * The WebGPU runtime: limits, batching, buffer reuse, determinism of the gather-form gradients, the
 * fused Adam kernel and flat memory over training. Runs on any adapter (lavapipe in CI); without one
 * its tests show as ignored, and fail when CI=true (see tests/devices.ts).
 */
import assert from "node:assert/strict";
import { TEST_DEVICES } from "./devices.ts";
import { maxRelativeToPeak } from "./harness.ts";
import { cpu } from "../engine/cpu.ts";
import { tensor, uniform } from "../engine/create.ts";
import { Random } from "../engine/random.ts";
import { Adam } from "../engine/optim.ts";
import { adamCpu } from "../engine/ops/adam.ts";
import { bytesInUse, type Tensor, tidy } from "../engine/tensor.ts";
import * as F from "../engine/ops/index.ts";
import { Conv2d } from "../engine/nn.ts";
import type { Sampler } from "../engine/backend.ts";
import type { WebGPUBackend } from "../webgpu/runtime.ts";
import { exclusiveScan } from "../webgpu/scan.ts";

const entry = TEST_DEVICES.find((d) => d.name === "webgpu");
const test = (name: string, fn: (gpu: WebGPUBackend) => void | Promise<void>) =>
  Deno.test({
    name: `webgpu runtime: ${name}`,
    ignore: !entry || entry.ignore,
    fn: async () => fn(await entry!.get() as WebGPUBackend),
  });

async function bits(t: Tensor): Promise<Uint32Array> {
  return new Uint32Array((await t.data()).buffer);
}

test("the device gets the adapter's real limits, not WebGPU's defaults", async (gpu) => {
  const adapter = (await navigator.gpu.requestAdapter())!;
  for (const [name, value] of Object.entries(gpu.runtime.limits)) {
    assert.equal(value, adapter.limits[name as keyof GPUSupportedLimits], name);
  }
});

test("a tensor beyond the binding limit and float64 data are refused with the sizes named", (gpu) => {
  const limit = gpu.runtime.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => gpu.runtime.acquire(limit + 4),
    new RegExp(`${limit + 4} bytes exceeds .*\\(${limit} bytes\\)`),
  );
  assert.throws(() => gpu.fromData(new Float64Array(3), [3]), /float64 data of shape \[3\]/);
});

test("params of hundreds of dispatches in one batch stay distinct until it is submitted", async (gpu) => {
  const filled = Array.from({ length: 300 }, (_, i) => gpu.full([5], i + 0.5, "float32"));
  const values = await Promise.all(filled.map((t) => t.data()));
  values.forEach((v, i) => assert.deepEqual([...v], new Array(5).fill(i + 0.5)));
  filled.forEach((t) => t.dispose());
});

test("an upload into a buffer freed by pending work does not overtake that work", async (gpu) => {
  const x = tensor([1, 2, 3, 4], [4], { device: gpu });
  const y = F.neg(x); // recorded, not submitted
  x.dispose(); // x's buffer returns to the pool while y's kernel still has to read it
  const z = tensor([10, 20, 30, 40], [4], { device: gpu }); // same size class: reuses that buffer
  assert.deepEqual([...await y.data()], [-1, -2, -3, -4]);
  assert.deepEqual([...await z.data()], [10, 20, 30, 40]);
  y.dispose();
  z.dispose();
});

test("exclusive scan over three levels of blocks matches the host prefix sum", async (gpu) => {
  const n = 1_100_000, rng = new Random(7);
  const counts = Uint32Array.from({ length: n }, () => Math.floor(rng.uniform(0, 4)));
  const rt = gpu.runtime, src = rt.acquire(n * 4), dst = rt.acquire(n * 4);
  rt.upload(src, new Float32Array(counts.buffer));
  exclusiveScan(rt, src, dst, n);
  const got = new Uint32Array(await rt.read(dst, n * 4));
  let run = 0, mismatches = 0;
  counts.forEach((c, i) => {
    if (got[i] !== run) mismatches++;
    run += c;
  });
  rt.release(src);
  rt.release(dst);
  assert.equal(mismatches, 0);
});

test("reductions (long ones split into chunks, an empty one a copy) match the CPU reference", async (gpu) => {
  const values = uniform([2, 3, 67, 129], 0, 1, new Random(11), { device: cpu }).cpuData();
  const x = tensor(values, [2, 3, 67, 129], { device: gpu });
  const x64 = tensor(values, [2, 3, 67, 129], { device: cpu, dtype: "float64" });
  for (const dims of [[0, 1, 2, 3], [0, 2, 3], [1, 3], [0], []]) {
    const got = await gpu.sumDims(x, dims).data(), want = cpu.sumDims(x64, dims).cpuData();
    // Sums of positive terms: each float32 addition adds at most 2^-24 relative, over log2(n) + 16 levels.
    assert.ok(maxRelativeToPeak(got, want) < 32 * 2 ** -24, `dims [${dims}]`);
  }
});

test("broadcasting ops that run four outputs per thread give the CPU's float32 results exactly", async (gpu) => {
  const rng = new Random(12);
  const pair = (shape: number[]) => {
    const values = uniform(shape, -1, 1, rng, { device: cpu });
    return [values, tensor(values.cpuData(), shape, { device: gpu })];
  };
  const [x, gx] = pair([2, 3, 4, 8]), [bias, gBias] = pair([1, 3, 1, 1]), [row, gRow] = pair([4, 8]);
  const [thin, gThin] = pair([1, 3, 1, 8]);
  // One correctly rounded float32 operation per element on both devices: equal to the bit.
  const cases: [string, Tensor, Tensor][] = [
    ["x + bias (splat)", gpu.binary("add", gx, gBias), cpu.binary("add", x, bias)],
    ["x * row (vec4 both)", gpu.binary("mul", gx, gRow), cpu.binary("mul", x, row)],
    ["bias - x (splat first)", gpu.binary("sub", gBias, gx), cpu.binary("sub", bias, x)],
    ["expand thin", gpu.expand(gThin, [2, 3, 4, 8]), cpu.expand(thin, [2, 3, 4, 8])],
  ];
  for (const [name, got, want] of cases) assert.deepEqual([...await got.data()], [...want.cpuData()], name);
});

/** A rotation by 0.3 rad with a 2.5x zoom-in: several grid points per input cell, some outside. */
function zoomedRotation(device: WebGPUBackend | typeof cpu, dtype: "float32" | "float64") {
  const [c, s] = [Math.cos(0.3) / 2.5, Math.sin(0.3) / 2.5];
  const theta = tensor([c, -s, 0.1, s, c, -0.05, c * 2.6, -s, 0, s, c * 2.6, 0], [2, 2, 3], {
    device,
    dtype,
  });
  const x = uniform([2, 3, 37, 41], -1, 1, new Random(3), { device, dtype });
  const grid = F.affineGrid(theta, [2, 3, 45, 43]);
  const gy = uniform([2, 3, 45, 43], -1, 1, new Random(4), { device, dtype });
  return { x, grid, gy };
}

for (const sampler of ["exact", "naive"] as Sampler[]) {
  test(`gridSampleGrad (${sampler}): two runs give the same bits and match the CPU reference`, async (gpu) => {
    const { x, grid, gy } = zoomedRotation(gpu, "float32");
    const both = { x: true, grid: true };
    const first = gpu.gridSampleGrad(gy, x, grid, sampler === "naive", sampler, both);
    const second = gpu.gridSampleGrad(gy, x, grid, sampler === "naive", sampler, both);
    assert.deepEqual(await bits(second.gx!), await bits(first.gx!));
    assert.deepEqual(await bits(second.gGrid!), await bits(first.gGrid!));
    const ref = zoomedRotation(cpu, "float32");
    const want = cpu.gridSampleGrad(ref.gy, ref.x, ref.grid, sampler === "naive", sampler, both);
    // A float32 pixel coordinate u < 45 carries a rounding of about 45·2^-24 and each tap weight is
    // 1 − (u − ⌊u⌋): relative to the peak, a few times 45·2^-24.
    const tol = 4 * 45 * 2 ** -24;
    assert.ok(maxRelativeToPeak(await first.gx!.data(), want.gx!.cpuData()) < tol);
    assert.ok(maxRelativeToPeak(await first.gGrid!.data(), want.gGrid!.cpuData()) < tol);
    // A gradient not asked for is not computed; the other one is unchanged.
    for (const device of [gpu, cpu]) {
      const input = device === gpu ? { gy, x, grid } : ref;
      const full = device === gpu ? first : want;
      const onlyGrid = device.gridSampleGrad(input.gy, input.x, input.grid, sampler === "naive", sampler, {
        x: false,
        grid: true,
      });
      const onlyX = device.gridSampleGrad(input.gy, input.x, input.grid, sampler === "naive", sampler, {
        x: true,
        grid: false,
      });
      assert.equal(onlyGrid.gx, null);
      assert.equal(onlyX.gGrid, null);
      assert.deepEqual(await bits(onlyGrid.gGrid!), await bits(full.gGrid!));
      assert.deepEqual(await bits(onlyX.gx!), await bits(full.gx!));
    }
  });
}

test("Adam: one fused update of more parameters than one dispatch binds matches the CPU reference", async (gpu) => {
  const shapes = [[3, 2, 3, 3], [3], [5, 7], [1], [4, 4], [9], [2, 2, 2], [6], [11], [3, 5]];
  const hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };
  const make = (device: WebGPUBackend | typeof cpu, seed: number) =>
    shapes.map((s) => uniform(s, -1, 1, new Random(seed++), { device }));
  const onGpu = [make(gpu, 1), make(gpu, 100), make(gpu, 200).map((t) => F.mul(t, t)), make(gpu, 300)];
  const onCpu = [make(cpu, 1), make(cpu, 100), make(cpu, 200).map((t) => F.mul(t, t)), make(cpu, 300)];
  for (let step = 1; step <= 3; step++) {
    gpu.adam(onGpu[0], onGpu[3], onGpu[1], onGpu[2], { ...hyper, step });
    adamCpu.adam(onCpu[0], onCpu[3], onCpu[1], onCpu[2], { ...hyper, step });
  }
  for (let k = 0; k < shapes.length; k++) {
    // float32 arithmetic on both sides; the update divides by √v, so allow a few ulps relative.
    assert.ok(maxRelativeToPeak(await onGpu[0][k].data(), onCpu[0][k].cpuData()) < 1e-6, `param ${k}`);
    assert.ok(maxRelativeToPeak(await onGpu[2][k].data(), onCpu[2][k].cpuData()) < 1e-6, `v ${k}`);
  }
});

test("200 training steps of a small conv net hold the device memory flat", async (gpu) => {
  const rng = new Random(5);
  const conv1 = new Conv2d(3, 6, 3, { rng, padding: 1, device: gpu });
  const conv2 = new Conv2d(6, 3, 3, { rng, padding: 1, device: gpu });
  const params = [...conv1.parameters(), ...conv2.parameters()];
  const opt = new Adam(params, { lr: 1e-2 });
  const x = uniform([4, 3, 16, 16], 0, 1, rng, { device: gpu }).keep();
  const step = () =>
    tidy(() => {
      opt.zeroGrad();
      const y = conv2.forward(F.relu(F.interpolate(F.maxPool2d(conv1.forward(x), 2), { size: [16, 16] })));
      const loss = F.mseLoss(y, x);
      loss.backward();
      opt.step();
      return loss;
    });
  const first = step();
  const firstLoss = await first.item();
  first.dispose();
  const held = bytesInUse("webgpu"), allocated = gpu.runtime.allocatedBytes;
  let last = first;
  for (let i = 1; i < 200; i++) {
    last.dispose();
    last = step();
  }
  const lastLoss = await last.item();
  last.dispose();
  assert.equal(bytesInUse("webgpu"), held, "bytes held by live tensors");
  assert.equal(gpu.runtime.allocatedBytes, allocated, "bytes of GPU buffers created");
  assert.ok(lastLoss < firstLoss, `the net trains: loss ${firstLoss} -> ${lastLoss}`);
});
