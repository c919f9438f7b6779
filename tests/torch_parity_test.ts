/**
 * PyTorch parity against the fixtures of scripts/make_torch_fixtures.py (torch 1.13, skimage 0.19).
 *
 * For each op case: the output, and every input gradient for the fixture's upstream gradient dL/dy.
 * error = max |ours − reference| / max |reference| over the tensor (harness.ts `maxRelativeToPeak`),
 * at most 1e-5 in float32 and 1e-10 in float64. float32 cases run on every test device, float64 on
 * the CPU. SSIM's reference is float64 (skimage, and its formula in torch for the gradient), so its
 * float32 run is held to 1e-5 of that.
 */
import assert from "node:assert/strict";
import type { Backend, DType } from "../engine/backend.ts";
import { tensor } from "../engine/create.ts";
import { cpu } from "../engine/cpu.ts";
import {
  Conv2d,
  ConvTranspose2d,
  Flatten,
  LeakyReLU,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
  Sigmoid,
} from "../engine/nn.ts";
import * as F from "../engine/ops/index.ts";
import { Adam, SGD } from "../engine/optim.ts";
import { Random } from "../engine/random.ts";
import { loadSafetensors } from "../engine/safetensors.ts";
import type { Tensor } from "../engine/tensor.ts";
import { TEST_DEVICES } from "./devices.ts";
import { maxRelativeToPeak } from "./harness.ts";

const TOL: Record<DType, number> = { float32: 1e-5, float64: 1e-10 };
const FIXTURES = new URL("./fixtures/", import.meta.url);

interface Stored {
  shape: number[];
  data: number[];
}

interface Options {
  stride: number;
  padding: number;
  outputPadding: number;
  kernel: number;
  alignCorners: boolean;
  size: number[];
  dataRange: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  momentum: number;
}

interface OpFixture {
  name: string;
  dtype: DType;
  options: Options;
  inputs: Record<string, Stored>;
  upstream: Stored;
  output: Stored;
  grads: Record<string, Stored>;
}

function fixture<T>(name: string): T {
  return JSON.parse(Deno.readTextFileSync(new URL(`torch_${name}.json`, FIXTURES)));
}

/** Where a fixture's dtype runs: float32 on every test device, float64 on the CPU only. */
function devicesFor(dtype: DType) {
  return dtype === "float32"
    ? TEST_DEVICES
    : [{ name: "cpu", ignore: false, get: () => Promise.resolve(cpu as Backend) }];
}

function load(s: Stored, device: Backend, dtype: DType, requiresGrad = false): Tensor {
  return tensor(s.data, s.shape, { device, dtype, requiresGrad });
}

async function expectClose(what: string, got: Tensor, want: Stored, dtype: DType): Promise<void> {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const err = maxRelativeToPeak(await got.data(), want.data);
  assert.ok(err <= TOL[dtype], `${what}: error ${err.toExponential(2)} > ${TOL[dtype]}`);
}

const OPS: Record<string, (t: Record<string, Tensor>, o: Options) => Tensor> = {
  conv2d: (t, o) => F.conv2d(t.x, t.w, t.b, o),
  conv_transpose2d: (t, o) => F.convTranspose2d(t.x, t.w, t.b, o),
  max_pool2d: (t, o) => F.maxPool2d(t.x, o.kernel, o.stride),
  affine_grid: (t, o) => F.affineGrid(t.theta, o.size, o),
  grid_sample: (t, o) => F.gridSample(t.x, t.grid, o),
  interpolate: (t, o) => F.interpolate(t.x, { size: [o.size[0], o.size[1]], alignCorners: o.alignCorners }),
};

for (const [op, fn] of Object.entries(OPS)) {
  for (const c of fixture<OpFixture[]>(op)) {
    for (const device of devicesFor(c.dtype)) {
      Deno.test(`torch parity ${device.name}: ${c.name}`, { ignore: device.ignore }, async () => {
        const d = await device.get();
        const xs: Record<string, Tensor> = {};
        for (const [k, s] of Object.entries(c.inputs)) xs[k] = load(s, d, c.dtype, k in c.grads);
        const y = fn(xs, c.options);
        await expectClose("output", y, c.output, c.dtype);
        y.backward(load(c.upstream, d, c.dtype));
        for (const [k, g] of Object.entries(c.grads)) await expectClose(`d/d${k}`, xs[k].grad!, g, c.dtype);
      });
    }
  }
}

interface SsimFixture {
  name: string;
  options: Options;
  inputs: { x: Stored; y: Stored };
  skimageMean: number;
  skimageMap: Stored;
  upstream: Stored;
  mapGrads: { x: Stored; y: Stored };
  meanGrads: { x: Stored; y: Stored };
}

for (const c of fixture<SsimFixture[]>("ssim")) {
  for (const dtype of ["float64", "float32"] as const) {
    for (const device of devicesFor(dtype)) {
      Deno.test(`torch parity ${device.name}: ${c.name.replace("float64", dtype)} vs skimage`, {
        ignore: device.ignore,
      }, async () => {
        const d = await device.get();
        const opts = { dataRange: c.options.dataRange };
        const x = load(c.inputs.x, d, dtype, true), y = load(c.inputs.y, d, dtype, true);
        const map = F.ssimMap(x, y, opts);
        await expectClose("ssimMap", map, c.skimageMap, dtype);
        map.backward(load(c.upstream, d, dtype));
        await expectClose("ssimMap d/dx", x.grad!, c.mapGrads.x, dtype);
        await expectClose("ssimMap d/dy", y.grad!, c.mapGrads.y, dtype);
        const x2 = load(c.inputs.x, d, dtype, true), y2 = load(c.inputs.y, d, dtype, true);
        const mean = F.ssim(x2, y2, opts);
        await expectClose("ssim", mean, { shape: [], data: [c.skimageMean] }, dtype);
        mean.backward();
        await expectClose("ssim d/dx", x2.grad!, c.meanGrads.x, dtype);
        await expectClose("ssim d/dy", y2.grad!, c.meanGrads.y, dtype);
      });
    }
  }
}

interface OptimiserStep {
  grads: (Stored | null)[];
  params: Stored[];
  state: Record<string, Stored>[];
}

interface OptimiserFixture {
  name: string;
  dtype: DType;
  options: Options;
  initial: Stored[];
  steps: OptimiserStep[];
}

for (const c of fixture<OptimiserFixture[]>("optim")) {
  for (const device of devicesFor(c.dtype)) {
    Deno.test(`torch parity ${device.name}: three ${c.name} steps`, { ignore: device.ignore }, async () => {
      const d = await device.get();
      const params = c.initial.map((s) => load(s, d, c.dtype, true));
      const optimiser = c.name.startsWith("Adam") ? new Adam(params, c.options) : new SGD(params, c.options);
      for (const [k, step] of c.steps.entries()) {
        optimiser.zeroGrad();
        step.grads.forEach((g, i) => (params[i].grad = g && load(g, d, c.dtype)));
        optimiser.step();
        const state = optimiser.state();
        for (const [i, p] of params.entries()) {
          await expectClose(`step ${k + 1} param ${i}`, p, step.params[i], c.dtype);
          for (const [name, want] of Object.entries(step.state[i])) {
            await expectClose(`step ${k + 1} ${i}.${name}`, state[`${i}.${name}`], want, c.dtype);
          }
        }
      }
    });
  }
}

interface SequentialFixture {
  input: Stored;
  output: Stored;
}

for (const device of TEST_DEVICES) {
  Deno.test(`torch parity ${device.name}: nn.Sequential weights from torch_sequential.safetensors`, {
    ignore: device.ignore,
  }, async () => {
    const d = await device.get();
    const c = fixture<SequentialFixture>("sequential");
    const layer = { rng: new Random(0), device: d };
    const model = new Sequential(
      new Conv2d(2, 4, 3, { stride: 2, padding: 1, ...layer }),
      new LeakyReLU(0.2),
      new ConvTranspose2d(4, 3, 4, { stride: 2, padding: 1, ...layer }),
      new Sigmoid(),
      new MaxPool2d(2),
      new Flatten(),
      new Linear(48, 5, layer),
      new ReLU(),
    );
    const { tensors } = await loadSafetensors(new URL("torch_sequential.safetensors", FIXTURES).pathname, d);
    await model.loadStateDict(tensors);
    await expectClose("output", model.forward(load(c.input, d, "float32")), c.output, "float32");
  });
}
