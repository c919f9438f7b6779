/**
 * Modules and PyTorch's default initialisation: parameter names, strict state-dict loading, and the
 * U(−1/√fan_in, 1/√fan_in) draws (fan_in checked against torch's own, the sample against the uniform).
 */
import assert from "node:assert/strict";
import { tensor } from "../engine/create.ts";
import { defaultBound, fanIn } from "../engine/init.ts";
import { Conv2d, ConvTranspose2d, LeakyReLU, Linear, Module, Sequential } from "../engine/nn.ts";
import { Random } from "../engine/random.ts";
import type { Tensor } from "../engine/tensor.ts";

interface TorchInit {
  name: string;
  weightShape: number[];
  fanIn: number;
  weightAbsMax: number;
  biasAbsMax: number;
}
const TORCH_INIT: TorchInit[] = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/torch_init.json", import.meta.url)),
);

class Toy extends Module {
  encoder: Sequential;
  head: Linear;
  constructor(rng: Random) {
    super();
    this.encoder = new Sequential(
      new Conv2d(1, 2, 3, { rng }),
      new LeakyReLU(),
      new ConvTranspose2d(2, 3, 2, { rng, bias: false }),
    );
    this.head = new Linear(4, 2, { rng });
  }
}

const absMax = (t: Tensor) => Math.max(...Array.from(t.cpuData(), Math.abs));

Deno.test("parameters are named as PyTorch names them", () => {
  const names = [...new Toy(new Random(1)).namedParameters()].map(([name, p]) => `${name} [${p.shape}]`);
  assert.deepEqual(names, [
    "encoder.0.weight [2,1,3,3]",
    "encoder.0.bias [2]",
    "encoder.2.weight [2,3,2,2]",
    "head.weight [2,4]",
    "head.bias [2]",
  ]);
});

Deno.test("fan_in and the init bound match torch's for Conv2d, ConvTranspose2d and Linear", () => {
  const rng = new Random(3);
  const layers = [
    new Conv2d(3, 8, 5, { rng }),
    new ConvTranspose2d(8, 3, 4, { rng }),
    new Linear(20, 7, { rng }),
  ];
  TORCH_INIT.forEach((torchLayer, i) => {
    const { weight, bias } = layers[i];
    assert.deepEqual(weight.shape, torchLayer.weightShape, torchLayer.name);
    assert.equal(fanIn(weight.shape), torchLayer.fanIn, torchLayer.name);
    const bound = defaultBound(weight.shape);
    // Both libraries' draws lie inside the bound (its float32 rounding allowed). The weights, 140 or
    // more draws each, also reach past 0.75 of it: the chance they do not is below 0.75^140 ≈ 3e-18.
    const biases = [torchLayer.biasAbsMax, absMax(bias!)],
      weights = [torchLayer.weightAbsMax, absMax(weight)];
    for (const drawn of [...biases, ...weights]) {
      assert.ok(drawn <= Math.fround(bound), `${torchLayer.name}: ${drawn}`);
    }
    for (const drawn of weights) assert.ok(drawn > 0.75 * bound, `${torchLayer.name}: ${drawn} vs ${bound}`);
  });
});

Deno.test("Conv2d weights are a uniform sample on [-1/sqrt(fan_in), 1/sqrt(fan_in)]", () => {
  const { weight } = new Conv2d(64, 64, 3, { rng: new Random(11) });
  const w = Array.from(weight.cpuData()), n = w.length, b = 1 / Math.sqrt(64 * 9);
  const mean = w.reduce((s, v) => s + v, 0) / n;
  const variance = w.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
  // Tolerances for a sample of n from U(−b, b): the extremes fall short of ±b by more than 40b/n with
  // probability e^-20; the mean (sd b/√(3n)) and variance (mean b²/3, sd b²√(4/(45n))) within 5 sd.
  assert.ok(Math.max(...w) > b * (1 - 40 / n) && Math.max(...w) <= Math.fround(b));
  assert.ok(Math.min(...w) < -b * (1 - 40 / n) && Math.min(...w) >= -Math.fround(b));
  assert.ok(Math.abs(mean) < (5 * b) / Math.sqrt(3 * n), `mean ${mean}`);
  assert.ok(Math.abs(variance - b * b / 3) < 5 * b * b * Math.sqrt(4 / (45 * n)), `variance ${variance}`);
});

Deno.test("the same seed gives the same parameters bit for bit, another seed does not", () => {
  const values = (seed: number) => new Toy(new Random(seed)).parameters().map((p) => [...p.cpuData()]);
  assert.deepEqual(values(5), values(5));
  assert.notDeepEqual(values(5), values(6));
});

Deno.test("loadStateDict copies values into the existing parameters, converting float64 to float32", async () => {
  const model = new Toy(new Random(1));
  const params = model.parameters();
  const source = new Toy(new Random(2)).stateDict();
  const float64 = Object.fromEntries(
    Object.entries(source).map(([k, t]) => [k, tensor(t.cpuData(), t.shape, { dtype: "float64" })]),
  );
  await model.loadStateDict(float64);
  assert.ok(model.parameters().every((p, i) => p === params[i] && p.dtype === "float32"));
  for (const [name, p] of model.namedParameters()) {
    assert.deepEqual(p.cpuData(), source[name].cpuData(), name);
  }
});

Deno.test("loadStateDict is strict: missing, unexpected and misshapen tensors are errors", async () => {
  const model = new Toy(new Random(1));
  const { "head.bias": _, ...missing } = model.stateDict();
  await assert.rejects(model.loadStateDict({ ...missing, "head.scale": tensor([1], [1]) }), {
    message: "loadStateDict: missing [head.bias], unexpected [head.scale]",
  });
  await assert.rejects(model.loadStateDict({ ...model.stateDict(), "head.bias": tensor([1, 2, 3], [3]) }), {
    message: "head.bias is [3], expected [2]",
  });
});

Deno.test("requireGrad(false) freezes every parameter of a module", () => {
  const model = new Toy(new Random(1));
  model.encoder.requireGrad(false);
  assert.deepEqual(
    [...model.namedParameters()].filter(([, p]) => p.requiresGrad).map(([name]) => name),
    ["head.weight", "head.bias"],
  );
});
