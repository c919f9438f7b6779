/**
 * The WebAssembly runtime: results are bit-identical for any thread count, freed blocks are reused so
 * memory stays flat (over a thousand training steps too), a kernel that traps on a worker thread is an error on the caller's thread, and
 * float64 is refused by name.
 */
import assert from "node:assert/strict";
import { bytesInUse, type Tensor, tidy } from "../engine/tensor.ts";
import { uniform } from "../engine/create.ts";
import { mean, square, sub } from "../engine/ops/index.ts";
import { Adam } from "../engine/optim.ts";
import { Autoencoder } from "../models/autoencoder.ts";
import { Random } from "../engine/random.ts";
import { createWasmBackend, type WasmBackend } from "../wasm/backend.ts";

const backends = new Map<number, WasmBackend>();
async function wasm(threads: number): Promise<WasmBackend> {
  if (!backends.has(threads)) backends.set(threads, await createWasmBackend({ threads }));
  return backends.get(threads)!;
}

function values(n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
}

/** Every kernel of this file's ops on one backend, on shapes that span several chunks. */
async function outputs(be: WasmBackend): Promise<Float32Array[]> {
  const a = be.fromData(values(8 * 16 * 64 * 64, 1), [8, 16, 64, 64]);
  const b = be.fromData(values(16, 2), [1, 16, 1, 1]);
  const g = be.fromData(values(8 * 16 * 64 * 64, 3), [8, 16, 64, 64]);
  const made: Tensor[] = [
    be.unary("leakyRelu", a, { slope: 0.2 }),
    be.unaryGrad("sigmoid", a, g, {}),
    be.binary("mul", a, b),
    be.binary("div", a, g),
    be.sumDims(a, [0, 2, 3]),
    be.sumDims(a, [1]),
    be.expand(b, [8, 16, 64, 64]),
    be.window(a, [8, 16, 70, 60], [0, 0, -3, 2]),
  ];
  const [p, m, v] = [values(300_001, 4), values(300_001, 5), values(300_001, 6).map(Math.abs)]
    .map((d) => be.fromData(d, [d.length]));
  const grad = be.fromData(values(300_001, 7), [300_001]);
  be.adam([p], [grad], [m], [v], {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0.01,
    step: 2,
  });
  const out = await Promise.all([...made, p, m, v].map((t) => t.data() as Promise<Float32Array>));
  for (const t of [a, b, g, grad, ...made, p, m, v]) t.dispose();
  return out;
}

Deno.test("wasm: outputs are bit-identical on 1, 2 and 3 threads", async () => {
  const [one, two, three] = await Promise.all([1, 2, 3].map(async (n) => outputs(await wasm(n))));
  one.forEach((expected, k) => {
    assert.deepEqual(
      new Uint32Array(two[k].buffer),
      new Uint32Array(expected.buffer),
      `kernel ${k}, 2 threads`,
    );
    assert.deepEqual(
      new Uint32Array(three[k].buffer),
      new Uint32Array(expected.buffer),
      `kernel ${k}, 3 threads`,
    );
  });
});

Deno.test("wasm: freed blocks are reused, so repeating a step takes no new memory", async () => {
  const be = await wasm(2);
  await outputs(be); // the first round takes the memory a round needs
  const taken = be.runtime.allocatedBytes;
  for (let round = 0; round < 5; round++) await outputs(be);
  assert.equal(be.runtime.allocatedBytes, taken);
});

Deno.test("wasm: a kernel that traps on any thread throws on the calling thread, and the runtime goes on", async () => {
  const be = await wasm(2);
  const beyond = be.runtime.memory.buffer.byteLength; // every address past the memory traps
  // copy(src, dst, n1, n2, n3, strides of src and dst): 64 rows of 1024, split into chunks of 16 rows
  const args = [beyond, beyond, 1, 64, 1024, 0, 0, 1024, 1, 0, 0, 1024, 1];
  assert.throws(() => be.runtime.run("copy", args, 64, 16), /wasm: kernel copy failed/);
  const x = be.fromData(values(10, 8), [10]); // the runtime still works afterwards
  assert.deepEqual(await be.unary("neg", x, {}).data(), (await x.data()).map((v) => -v));
});

Deno.test("wasm: float64 data and tensors are refused by name", async () => {
  const be = await wasm(1);
  assert.throws(() => be.fromData(new Float64Array(4), [4]), /wasm: float64 data of shape \[4\]/);
  assert.throws(() => be.full([2], 1, "float64"), /wasm: float64 tensors are not supported/);
});

Deno.test("wasm: over 1,000 training steps the live tensors and the memory stay flat", async () => {
  const be = await wasm(2);
  const rng = new Random(9);
  const model = new Autoencoder({ channels: 1, size: 32, base: 4, latent: 8, rng, device: be });
  const optimiser = new Adam(model.parameters(), { lr: 1e-3 });
  const x = uniform([4, 1, 32, 32], 0, 1, rng, { device: be });
  const live: number[] = [], taken: number[] = [], losses: number[] = [];
  for (let step = 0; step < 1000; step++) {
    const loss = tidy(() => {
      const value = mean(square(sub(model.forward(x), x)));
      value.backward();
      optimiser.step();
      return value;
    });
    optimiser.zeroGrad();
    if (step % 100 === 0) losses.push(await loss.item());
    loss.dispose();
    live.push(bytesInUse("wasm"));
    taken.push(be.runtime.allocatedBytes);
  }
  // Adam's moments appear at the first step; from then on every step ends with the same tensors alive
  // and takes no new memory.
  assert.ok(live.slice(1).every((b) => b === live[1]), `live bytes ${live[1]} → ${Math.max(...live)}`);
  assert.ok(taken.slice(1).every((b) => b === taken[1]), `heap bytes ${taken[1]} → ${Math.max(...taken)}`);
  assert.ok(losses.at(-1)! < losses[0], `the loss falls:  ${losses.map((l) => l.toFixed(4))}`);
  model.dispose();
  x.dispose();
});
