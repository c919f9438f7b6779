/**
 * The training loop and the configurations: a short run lowers the reconstruction loss; an interrupted and
 * resumed run ends bit-identical to an uninterrupted one; a non-finite loss stops the run naming its step
 * and keeps the last checkpoint; frozen and fine-tuned STNs behave as Section 8.1 says.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cpu } from "../engine/cpu.ts";
import { full } from "../engine/create.ts";
import { Adam } from "../engine/optim.ts";
import { mul } from "../engine/ops/index.ts";
import { Random } from "../engine/random.ts";
import { saveSafetensors } from "../engine/safetensors.ts";
import { bytesInUse, noGrad } from "../engine/tensor.ts";
import type { PatchSet } from "../data/prepare.ts";
import { RotationStn, StnAutoencoder } from "../models/stn.ts";
import { currentCheckpoint } from "../train/checkpoint.ts";
import { configurationNamed, configureModel, type ModelOptions } from "../train/configurations.ts";
import { type Objective, reconstructionObjective } from "../train/objectives.ts";
import { patchBatch } from "../train/patch_batch.ts";
import type { ProgressState } from "../train/progress.ts";
import { train, type TrainerOptions, type TrainingJob } from "../train/trainer.ts";
import { parseConfig } from "../cli/train.ts";
import { stripePatches } from "./stripe_patches.ts";
import { TEST_DEVICES } from "./devices.ts";

/** A reduced STN+AE for 32x32 patches (Table 1 and 2 layer types, fewer channels). */
const SMALL: Omit<ModelOptions, "rng"> = {
  channels: 1,
  size: 32,
  base: 4,
  latent: 8,
  inputSize: 32,
  convChannels: [4, 8, 8, 8],
  hiddenUnits: [16, 8],
};
// Darker than the sigmoid's starting 0.5, so learning the mean image alone is a clear improvement.
const TRAIN = stripePatches({ n: 32, seed: 1, mean: 0.25, amplitude: 0.15 });
const VALIDATION = stripePatches({ n: 16, seed: 2, mean: 0.25, amplitude: 0.15 });

function job(
  model: StnAutoencoder,
  lr: number,
  objective: Objective = reconstructionObjective(model),
): TrainingJob {
  const optimiser = new Adam(model.parameters().filter((p) => p.requiresGrad), { lr, weightDecay: 1e-5 });
  return { model, optimiser, objective, train: TRAIN, validation: VALIDATION };
}

const options = async (extra: Partial<TrainerOptions> = {}): Promise<TrainerOptions> => ({
  outDir: await Deno.makeTempDir(),
  device: cpu,
  epochs: 3,
  batchSize: 16,
  seed: 5,
  progress: null,
  ...extra,
});

function validationLoss(model: StnAutoencoder, set: PatchSet): number {
  const batch = patchBatch(set, Array.from({ length: set.n }, (_, i) => i), cpu);
  return noGrad(() => reconstructionObjective(model)(batch)).cpuData()[0];
}

Deno.test("a short STN+AE run lowers the content-masked reconstruction loss", async () => {
  const model = new StnAutoencoder({ ...SMALL, rng: new Random(1) });
  const before = validationLoss(model, VALIDATION);
  // lr 5e-3 (the paper: 2e-4) so that 16 steps show it.
  const result = await train(job(model, 5e-3), await options({ epochs: 8, batchSize: 16 }));
  const after = validationLoss(model, VALIDATION);
  console.log(`validation loss ${before} -> ${after}`, result.curve);
  assert.ok(result.completed);
  assert.deepEqual(result.curve.map((r) => r.epoch), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(
    Math.abs(result.curve.at(-1)!.valLoss - after) < 1e-6,
    "the log's validation loss is the objective's",
  );
  assert.ok(after < 0.3 * before, `validation loss ${before} -> ${after}`);
});

/** The model's weights and Adam's state after a run, as raw bytes. */
async function finalState(dir: string): Promise<Uint8Array[]> {
  const pointer = await currentCheckpoint(dir);
  return await Promise.all(
    ["weights.safetensors", "optimiser.safetensors"].map((f) => Deno.readFile(join(dir, pointer!.folder, f))),
  );
}

Deno.test("an interrupted and resumed run ends with the same bits as an uninterrupted one", async () => {
  const straight = await options();
  await train(job(new StnAutoencoder({ ...SMALL, rng: new Random(2) }), 1e-2), straight);

  // Stop in the middle of epoch 2, as a kill would: the epoch-1 checkpoint is what survives.
  const interrupted = await options();
  const stop = new AbortController();
  const progress = {
    update: (p: ProgressState) => p.epoch === 2 && p.step === 1 && stop.abort(),
    message: () => {},
  };
  const first = await train(
    job(new StnAutoencoder({ ...SMALL, rng: new Random(2) }), 1e-2),
    { ...interrupted, signal: stop.signal, progress },
  );
  assert.equal(first.completed, false);
  assert.equal((await currentCheckpoint(interrupted.outDir))!.epoch, 1);
  // A fresh process: a newly initialised model (its init is overwritten) and optimiser.
  const resumed = await train(
    job(new StnAutoencoder({ ...SMALL, rng: new Random(2) }), 1e-2),
    { ...interrupted, resume: true },
  );
  assert.ok(resumed.completed);
  assert.deepEqual(resumed.curve.map((r) => r.epoch), [1, 2, 3]);
  assert.deepEqual(await finalState(interrupted.outDir), await finalState(straight.outDir));
  assert.deepEqual(
    await Deno.readFile(join(interrupted.outDir, "weights.safetensors")),
    await Deno.readFile(join(straight.outDir, "weights.safetensors")),
  );
});

Deno.test("a fresh run refuses a folder that holds a checkpoint", async () => {
  const opts = await options({ epochs: 1 });
  await train(job(new StnAutoencoder({ ...SMALL, rng: new Random(3) }), 1e-3), opts);
  await assert.rejects(
    () => train(job(new StnAutoencoder({ ...SMALL, rng: new Random(3) }), 1e-3), opts),
    /already holds a checkpoint at epoch 1/,
  );
});

Deno.test("a non-finite loss stops the run, names the step and keeps the last good checkpoint", async () => {
  const model = new StnAutoencoder({ ...SMALL, rng: new Random(4) });
  const loss = reconstructionObjective(model);
  let calls = 0;
  // Two training steps per epoch, then validation: the 4th call is epoch 2's first step.
  const poisoned: Objective = (batch) => (++calls === 4 ? mul(loss(batch), NaN) : loss(batch));
  const opts = await options();
  await assert.rejects(
    () => train(job(model, 1e-3, poisoned), opts),
    /non-finite training loss NaN at epoch 2, step 1 \(optimiser step 3\): training stopped, the checkpoint of epoch 1 in .* is kept/,
  );
  assert.equal((await currentCheckpoint(opts.outDir))!.epoch, 1);
  const log = (await Deno.readTextFile(join(opts.outDir, "log.jsonl"))).trim().split("\n");
  assert.equal(log.length, 1);
});

Deno.test("configurations: a frozen STN stays put, a fine-tuned one moves, both start pre-trained", async () => {
  const dir = await Deno.makeTempDir();
  const pretrained = new RotationStn({ ...SMALL, rng: new Random(6) });
  // A non-zero last layer stands in for pre-training, so "loaded" is told apart from "freshly zero".
  const stnPath = join(dir, "stn.safetensors");
  const last = pretrained.localisation.layers.at(-1)!.parameters()[1];
  last.assign(full([1], 0.3));
  await saveSafetensors(stnPath, pretrained.stateDict());
  const stnWeights = async (model: StnAutoencoder) =>
    await Promise.all(model.stn.parameters().map(async (p) => Array.from(await p.data())));

  for (const name of ["stn-frozen", "stn-finetuned"]) {
    const configuration = configurationNamed(name);
    const { model, trainable } = await configureModel(
      configuration,
      { ...SMALL, rng: new Random(7) },
      stnPath,
    );
    const stn = model as StnAutoencoder;
    const start = await stnWeights(stn);
    assert.deepEqual(
      start,
      await Promise.all(pretrained.parameters().map(async (p) => Array.from(await p.data()))),
    );
    assert.equal(trainable.length, configuration.trainStn ? model.parameters().length : 36);
    await train(
      {
        model,
        optimiser: new Adam(trainable, { lr: 1e-2 }),
        objective: reconstructionObjective(model),
        train: TRAIN,
        validation: VALIDATION,
      },
      await options({ epochs: 1 }),
    );
    const end = await stnWeights(stn);
    if (configuration.trainStn) assert.notDeepEqual(end, start);
    else assert.deepEqual(end, start);
  }
  await assert.rejects(
    () => configureModel(configurationNamed("3"), { ...SMALL, rng: new Random(7) }, null),
    /configuration 3 \(stn-frozen\) needs the pre-trained STN's weights file/,
  );
  assert.throws(() => configurationNamed("stn"), /unknown configuration "stn"/);
});

for (const device of TEST_DEVICES) {
  Deno.test(`${device.name}: the same training code runs, its device memory stays flat`, {
    ignore: device.ignore,
  }, async () => {
    const backend = await device.get();
    const model = new StnAutoencoder({ ...SMALL, rng: new Random(8), device: backend });
    const held: number[][] = [];
    const progress = {
      update: (p: ProgressState) => (held[p.epoch - 1] ??= []).push(bytesInUse(backend.name)),
      message: () => {},
    };
    const result = await train(
      job(model, 5e-3),
      await options({ device: backend, epochs: 4, readEvery: 1, progress }),
    );
    // Adam's moments appear at the first step; from then on every step ends with the same tensors alive.
    const steady = held.slice(1).flat();
    assert.ok(steady.every((bytes) => bytes === steady[0]), `bytes held per step: ${held.join(" | ")}`);
    assert.ok(result.curve.every((r) => Number.isFinite(r.trainLoss) && Number.isFinite(r.valLoss)));
    assert.ok(result.curve[3].valLoss < result.curve[0].valLoss);
    model.dispose();
  });
}

Deno.test("train config files: defaults filled in, each mistake named with the file and the field", () => {
  const config = parseConfig(
    `{"class": "screw", "run": "stn-frozen", "out": "runs/x", "epochs": 3}`,
    "a.json",
  );
  assert.equal(config.epochs, 3);
  assert.equal(config.samples, 2000);
  assert.equal(config.sampler, "exact");
  assert.equal(config.init, "he");
  const bad: [string, RegExp][] = [
    [
      `{"class": "screw", "run": "ae", "out": "x", "epochs": 0}`,
      /a.json: epochs is 0, expected a positive integer/,
    ],
    [
      `{"class": "screw", "run": "stn", "out": "x"}`,
      /a.json: run is "stn", expected pretrain or a configuration/,
    ],
    [
      `{"class": "screw", "run": "ae", "out": "x", "lr": "fast"}`,
      /a.json: lr is "fast", expected a positive number/,
    ],
    [`{"class": "screw", "run": "ae", "out": "x", "epoch": 3}`, /a.json: unknown field "epoch"/],
    [
      `{"class": "screw", "run": "ae", "out": "x", "init": "xavier"}`,
      /a.json: init is "xavier", expected "he" or "torch"/,
    ],
    [`{"class": "screw", "run": "ae"}`, /a.json: "out" is missing/],
    [`[1, 2]`, /a.json must hold a JSON object/],
    [`{"class": }`, /a.json is not JSON/],
  ];
  for (const [text, error] of bad) assert.throws(() => parseConfig(text, "a.json"), error);
});
