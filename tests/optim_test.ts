/**
 * Optimisers beyond the PyTorch fixtures (tests/torch_parity_test.ts): hyper-parameter checks, the
 * in-place update contract, zeroGrad, and resuming from state() saved as safetensors, which must
 * continue bit for bit as if the run had not stopped.
 */
import assert from "node:assert/strict";
import { tensor } from "../engine/create.ts";
import { square, sub, sum } from "../engine/ops/index.ts";
import { Adam, SGD } from "../engine/optim.ts";
import { loadSafetensors, saveSafetensors } from "../engine/safetensors.ts";
import type { Tensor } from "../engine/tensor.ts";

const TARGET = [0.5, -1.5, 2, 0.25, -0.75, 1];

function startingParams(): Tensor[] {
  return [
    tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true }),
    tensor([-1, 0.5], [2], { requiresGrad: true }),
  ];
}

/** Gradient of L = Σ (p − target)², the objective every run here descends. */
function computeGrads(params: Tensor[]): void {
  const target = tensor(TARGET.slice(0, 4), [2, 2]), target2 = tensor(TARGET.slice(4), [2]);
  sum(square(sub(params[0], target))).backward();
  sum(square(sub(params[1], target2))).backward();
}

type MakeOptimiser = (params: Tensor[]) => Adam | SGD;
const OPTIMISERS: [string, MakeOptimiser][] = [
  ["Adam", (ps) => new Adam(ps, { lr: 0.1, weightDecay: 0.01 })],
  ["SGD", (ps) => new SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 })],
];

function descend(optimiser: Adam | SGD, steps: number): void {
  for (let i = 0; i < steps; i++) {
    optimiser.zeroGrad();
    computeGrads([...optimiser.params]);
    optimiser.step();
  }
}

Deno.test("optimisers reject learning rates that are not finite and positive, and bad Adam betas", () => {
  const p = [tensor([1], [1], { requiresGrad: true })];
  for (const lr of [0, -1e-3]) {
    assert.throws(() => new Adam(p, { lr }), { message: `Adam: learning rate ${lr} must be finite and > 0` });
    assert.throws(() => new SGD(p, { lr }), { message: `SGD: learning rate ${lr} must be finite and > 0` });
  }
  const adam = new Adam(p);
  assert.throws(() => (adam.lr = NaN), { message: "Adam: learning rate NaN must be finite and > 0" });
  assert.throws(() => new Adam(p, { betas: [0.9, 1] }), { message: "Adam: beta2 1 must be in [0, 1)" });
  assert.throws(() => new SGD(p, { lr: 1, momentum: -0.5 }), {
    message: "SGD: momentum -0.5 must be finite and >= 0",
  });
});

Deno.test("Adam's kernel updates each parameter in its own storage", () => {
  const params = startingParams();
  const views = params.map((p) => p.view(p.shape));
  const before = params.map((p) => p.cpuData().slice());
  descend(new Adam(params, { lr: 0.1 }), 1);
  params.forEach((p, i) => {
    assert.notDeepEqual(p.cpuData(), before[i]);
    assert.deepEqual(views[i].cpuData(), p.cpuData());
  });
});

Deno.test("zeroGrad disposes every gradient", () => {
  const params = startingParams();
  const optimiser = new SGD(params, { lr: 0.1 });
  computeGrads(params);
  const grads = params.map((p) => p.grad!);
  optimiser.zeroGrad();
  assert.ok(params.every((p) => p.grad === null));
  assert.ok(grads.every((g) => g.disposed));
});

for (const [name, make] of OPTIMISERS) {
  Deno.test(`${name}: resuming from state() and weights saved as safetensors repeats the run bit for bit`, async () => {
    const straight = startingParams();
    descend(make(straight), 5);

    const first = startingParams();
    const interrupted = make(first);
    descend(interrupted, 2);
    const path = await Deno.makeTempFile({ suffix: ".safetensors" });
    const weights = Object.fromEntries(first.map((p, i) => [`p${i}`, p]));
    await saveSafetensors(path, { ...weights, ...interrupted.state() });

    const { tensors } = await loadSafetensors(path);
    await Deno.remove(path);
    const resumedParams = first.map((_, i) => tensors[`p${i}`].requireGrad());
    const resumed = make(resumedParams);
    await resumed.loadState(tensors);
    descend(resumed, 3);
    resumedParams.forEach((p, i) => assert.deepEqual(p.cpuData(), straight[i].cpuData()));
  });
}
