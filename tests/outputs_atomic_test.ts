/**
 * Issue 13, outputs: whole or absent, never lost or mixed. One case per item: detect's output checks,
 * per-image atomic writes and refusal to overwrite; make-data's whole-folder replacement, usage and --out
 * checks; train --resume with another config and a pretrainedStn of the wrong kind; a config without a
 * validation set; the non-finite-loss message before the first checkpoint; --collect with unfinished runs;
 * detect's threshold warning; n/a cells never bold; a signal stopping training at the step it arrives.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cpu } from "../engine/cpu.ts";
import { Adam } from "../engine/optim.ts";
import { mul } from "../engine/ops/index.ts";
import { Random } from "../engine/random.ts";
import { saveSafetensors } from "../engine/safetensors.ts";
import { createImage } from "../data/image.ts";
import { encodePng } from "../data/image_file.ts";
import { detectionMetadata } from "../detect/detector.ts";
import { Autoencoder } from "../models/autoencoder.ts";
import { StnAutoencoder } from "../models/stn.ts";
import { checkPretrainedStn } from "../train/configurations.ts";
import { type Objective, reconstructionObjective } from "../train/objectives.ts";
import { train, type TrainingJob } from "../train/trainer.ts";
import type { ConfigurationResult, DetectionFigures } from "../experiments/results.ts";
import { CONFIGURATIONS } from "../experiments/results.ts";
import { detectionTable } from "../report/tables.ts";
import { detect, type DetectOptions, parseDetectArgs, UsageError } from "../cli/detect.ts";
import { parseConfig } from "../cli/train.ts";
import { stripePatches } from "./stripe_patches.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function run(script: string, args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", join(ROOT, script), ...args],
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout), err: text.decode(stderr) };
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

const noStack = (text: string) => assert.doesNotMatch(text, /Uncaught|^ {4}at /m);

// --- detect ---

/** A weights file of a tiny Table-1 AE with a stored SSIM threshold, and three small gray images. */
async function detectInputs() {
  const dir = await Deno.makeTempDir({ prefix: "outputs_detect_" });
  const weights = join(dir, "weights.safetensors");
  const ae = new Autoencoder({ channels: 1, base: 4, latent: 8, rng: new Random(7) });
  await saveSafetensors(weights, ae.stateDict(), detectionMetadata({ thresholds: { ssim: 0.5 } }));
  ae.dispose();
  const images = [];
  for (const [k, name] of ["a", "b", "c"].entries()) {
    const image = createImage(1, 40, 48);
    image.data.forEach((_, i) => (image.data[i] = ((i * (k + 3)) % 17) / 17));
    images.push(join(dir, `${name}.png`));
    await Deno.writeFile(images.at(-1)!, encodePng(image));
  }
  return { dir, weights, images, out: join(dir, "out") };
}

async function runDetect(args: string[]) {
  const lines: string[] = [];
  const detected = await detect(
    parseDetectArgs([...args, "--device", "cpu"]) as DetectOptions,
    (l) => lines.push(l),
  );
  return { detected, lines };
}

Deno.test("detect checks every output path first: --out a file, or files it would overwrite, refused untouched", async () => {
  const { dir, weights, images, out } = await detectInputs();
  const refused = (args: string[], pattern: RegExp) =>
    assert.rejects(runDetect(["--weights", weights, ...args]), (e: Error) => {
      assert.ok(e instanceof UsageError, e.message);
      assert.match(e.message, pattern);
      return true;
    });
  await refused(["--image", images[0], "--out", images[1]], /^--out .*b\.png is a file, expected a folder/);
  await Deno.mkdir(out);
  await Deno.writeTextFile(join(out, "b_mask.png"), "an earlier result");
  await refused(
    ["--image", images[0], "--image", images[1], "--out", out],
    /^.*out\/b_mask\.png already exists: pass --overwrite to replace/,
  );
  assert.deepEqual(await filesIn(out), ["b_mask.png"]);
  assert.equal(await Deno.readTextFile(join(out, "b_mask.png")), "an earlier result");
  await runDetect([
    "--weights",
    weights,
    "--image",
    images[0],
    "--image",
    images[1],
    "--out",
    out,
    "--overwrite",
  ]);
  assert.deepEqual(await filesIn(out), ["a_mask.png", "a_overlay.png", "b_mask.png", "b_overlay.png"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detect writes each image whole; on a failure it stops, leaves nothing of that image and names the earlier ones", async () => {
  const { dir, weights, images, out } = await detectInputs();
  // b's mask cannot be written: its temporary name is taken by a folder.
  const blocker = `b_mask.png.${Deno.pid}.partial`;
  await Deno.mkdir(join(out, blocker), { recursive: true });
  const args = ["--weights", weights, ...images.flatMap((i) => ["--image", i]), "--out", out];
  await assert.rejects(runDetect(args), (e: Error) => {
    assert.match(e.message, /^.*\/b\.png failed, and nothing of it was written: /);
    assert.match(
      e.message,
      /Stopped there; the files of the 1 image\(s\) before it were written: .*\/a\.png$/,
    );
    return true;
  });
  assert.deepEqual(await filesIn(out), ["a_mask.png", "a_overlay.png", blocker]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detect warns when --threshold is above the largest possible residual", async () => {
  const { dir, weights, images, out } = await detectInputs();
  const { lines } = await runDetect([
    "--weights",
    weights,
    "--image",
    images[0],
    "--threshold",
    "2.5",
    "--out",
    out,
  ]);
  assert.ok(
    lines.includes(
      "warning: threshold 2.5 is above the largest possible ssim residual, 2 (1 - SSIM, and SSIM >= -1): " +
        "no pixel can reach it, so every mask will be empty",
    ),
    lines.join("\n"),
  );
  const l2 = await runDetect([
    "--weights",
    weights,
    "--image",
    images[0],
    "--residual",
    "l2",
    "--threshold",
    "1.5",
    "--out",
    join(dir, "l2"),
  ]);
  assert.ok(
    l2.lines.some((l) => l.startsWith("warning: threshold 1.5 is above the largest possible l2 residual, 1")),
  );
  await Deno.remove(dir, { recursive: true });
});

// --- make-data ---

Deno.test("make-data refuses an existing class folder, replaces it whole with --overwrite, and explains usage", async () => {
  const out = await Deno.makeTempDir({ prefix: "outputs_make_" });
  const small = [
    "--classes",
    "screw",
    "--size",
    "64",
    "--train-good",
    "1",
    "--test-good",
    "1",
    "--defective",
    "1",
  ];
  await Deno.mkdir(join(out, "screw/train/good"), { recursive: true });
  await Deno.writeTextFile(join(out, "screw/train/good/old.png"), "from an earlier run");
  const refused = await run("cli/make_data.ts", ["--out", out, ...small]);
  assert.equal(refused.code, 2);
  assert.match(
    refused.err,
    /^make-data: .*\/screw already exists: pass --overwrite to replace it completely/,
  );
  assert.deepEqual(await filesIn(join(out, "screw/train/good")), ["old.png"]);
  const replaced = await run("cli/make_data.ts", ["--out", out, ...small, "--overwrite"]);
  assert.equal(replaced.code, 0, replaced.err);
  assert.deepEqual(await filesIn(join(out, "screw/train/good")), ["000.png"], "no old file mixed in");
  assert.deepEqual(await filesIn(out), ["screw"], "no temporary folder left");

  const help = await run("cli/make_data.ts", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^deno task make-data --out DIR \[options\]/);
  const bad = await run("cli/make_data.ts", ["--out", out, "--sizes", "3"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^make-data: Unknown option '--sizes'[^]*deno task make-data --out DIR/);
  noStack(bad.err);
  const file = join(out, "screw/train/good/000.png");
  const onFile = await run("cli/make_data.ts", ["--out", file, ...small]);
  assert.equal(onFile.code, 2);
  assert.match(onFile.err, new RegExp(`^make-data: --out ${file} is a file, expected a folder`));
  await Deno.remove(out, { recursive: true });
});

// --- train ---

Deno.test("train --resume refuses a config that differs from the run's, naming the fields", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outputs_train_" });
  const out = join(dir, "run");
  await Deno.mkdir(join(out, "checkpoint-0001"), { recursive: true });
  await Deno.writeTextFile(
    join(out, "checkpoint.json"),
    JSON.stringify({ folder: "checkpoint-0001", epoch: 1 }),
  );
  await Deno.writeTextFile(
    join(out, "train-config.json"),
    JSON.stringify({
      class: "screw",
      run: "ae",
      lr: 0.0002,
      seed: 1,
      batchSize: 16,
      samples: 40,
      channels: "the class's",
      latent: 100,
      init: "he",
      sampler: "exact",
    }),
  );
  const config = join(dir, "run.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({ class: "screw", run: "1", out, samples: 40, lr: 0.001, seed: 2, latent: 50 }),
  );
  const resumed = await run("cli/train.ts", ["--config", config, "--resume", "--device", "cpu"]);
  assert.equal(resumed.code, 1);
  assert.equal(
    resumed.err.trim(),
    `train: --resume: the run in ${out} was started with another config (${out}/train-config.json): ` +
      `lr 0.0002 there, 0.001 here; seed 1 there, 2 here; latent 100 there, 50 here. ` +
      `Resume with the same config, or choose another out`,
  );
  const fresh = await run("cli/train.ts", ["--config", config, "--device", "cpu"]);
  assert.equal(fresh.code, 1);
  assert.match(fresh.err, /already holds a checkpoint at epoch 1: continue it with --resume/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a pretrainedStn file of the wrong kind is named with the kind of weights it holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outputs_stn_" });
  const ae = join(dir, "ae.safetensors"), stnAe = join(dir, "stn-ae.safetensors");
  const rng = new Random(1);
  await saveSafetensors(ae, new Autoencoder({ channels: 1, base: 4, latent: 8, rng }).stateDict());
  await saveSafetensors(stnAe, new StnAutoencoder({ channels: 1, base: 4, latent: 8, rng }).stateDict());
  await assert.rejects(
    () => checkPretrainedStn(stnAe),
    new RegExp(
      `^Error: pretrainedStn ${stnAe} holds an STN\\+AE's weights \\(a configuration run's: encoder.\\*, ` +
        `decoder.\\*, stn.\\*\\), expected the weights.safetensors of a "pretrain" run \\(tensors localisation.\\*\\)$`,
    ),
  );
  await assert.rejects(
    () => checkPretrainedStn(join(dir, "gone.safetensors")),
    /gone\.safetensors does not exist/,
  );
  const config = join(dir, "run.json");
  await Deno.writeTextFile(
    config,
    JSON.stringify({ class: "screw", run: "stn-frozen", out: join(dir, "run"), pretrainedStn: ae }),
  );
  const { code, err } = await run("cli/train.ts", ["--config", config, "--device", "cpu"]);
  assert.equal(code, 1);
  assert.equal(
    err.trim(),
    `train: pretrainedStn ${ae} holds a plain autoencoder's weights (encoder.*, decoder.*), expected the ` +
      `weights.safetensors of a "pretrain" run (tensors localisation.*)`,
  );
  await Deno.remove(dir, { recursive: true });
});

/** A tiny AE on 32x32 stripes: two training steps per epoch at batch 8 (16 patches), 8 validation patches. */
function tinyJob(objective?: (base: Objective) => Objective, validation = 8): TrainingJob {
  const model = new Autoencoder({ channels: 1, size: 32, base: 4, latent: 8, rng: new Random(3) });
  const base = reconstructionObjective(model);
  return {
    model,
    optimiser: new Adam(model.parameters(), { lr: 1e-3 }),
    objective: objective ? objective(base) : base,
    train: stripePatches({ n: 16, seed: 1 }),
    validation: stripePatches({ n: validation, seed: 2 }),
  };
}

const trainerOptions = async () => ({
  outDir: await Deno.makeTempDir({ prefix: "outputs_trainer_" }),
  device: cpu,
  epochs: 2,
  batchSize: 8,
  seed: 1,
  progress: null,
});

Deno.test("a config that cannot give a validation set (samples: 2) is refused by the config check", async () => {
  assert.throws(
    () => parseConfig(`{"class": "screw", "run": "ae", "out": "x", "samples": 2}`, "a.json"),
    /^Error: a.json: samples is 2, expected an integer >= 3 \(the 20% validation part of 2 rounds to no patch/,
  );
  assert.equal(parseConfig(`{"class": "screw", "run": "ae", "out": "x", "samples": 3}`, "a.json").samples, 3);
  // The trainer itself refuses an empty set before the first step, instead of failing after an epoch.
  const options = await trainerOptions();
  await assert.rejects(() => train(tinyJob(undefined, 0), options), /^Error: the validation set is empty/);
  assert.deepEqual(await filesIn(options.outDir), []);
});

Deno.test("a non-finite loss before the first checkpoint says that none exists yet", async () => {
  const options = await trainerOptions();
  await assert.rejects(
    () => train(tinyJob((loss) => (batch) => mul(loss(batch), NaN)), options),
    new RegExp(
      `non-finite training loss NaN at epoch 1, step 1 \\(optimiser step 1\\): training stopped, and no ` +
        `checkpoint exists yet in ${options.outDir} \\(the first is written at the end of epoch 1\\)$`,
    ),
  );
  // After one: the message names the folder that holds it.
  let calls = 0;
  const later = await trainerOptions();
  await assert.rejects(
    () => train(tinyJob((loss) => (batch) => ++calls === 4 ? mul(loss(batch), NaN) : loss(batch)), later),
    new RegExp(`the checkpoint of epoch 1 in ${later.outDir} is kept \\(${later.outDir}/checkpoint-0001\\)$`),
  );
  assert.ok((await filesIn(later.outDir)).includes("checkpoint-0001"));
});

Deno.test("a stop signal ends training after the step it arrives in, even between loss read-backs", async () => {
  const stop = new AbortController();
  let steps = 0;
  // Four steps an epoch, losses read back every 10: the signal arrives (as Ctrl-C's listener would fire)
  // during the second step. Before, the loop awaited nothing until the epoch's end, so the listener ran
  // only then, two steps later.
  const job = tinyJob((loss) => (batch) => {
    if (++steps === 2) setTimeout(() => stop.abort(), 0);
    return loss(batch);
  });
  const options = { ...(await trainerOptions()), batchSize: 4, readEvery: 10, signal: stop.signal };
  const result = await train(job, options);
  assert.equal(result.completed, false);
  assert.equal(steps, 2);
});

// --- reproduce --collect ---

Deno.test("--collect on a folder with unfinished runs names the missing runs and writes no report", async () => {
  const out = await Deno.makeTempDir({ prefix: "outputs_collect_" });
  await Deno.writeTextFile(
    join(out, "protocol.json"),
    JSON.stringify({
      preset: "smoke",
      device: "cpu",
      classes: ["screw"],
      seeds: [1],
      startedAt: "2026-01-01T00:00:00.000Z",
      wallSeconds: 0,
      settings: {},
    }),
  );
  await Deno.mkdir(join(out, "runs/fig7-screw"), { recursive: true });
  await Deno.writeTextFile(
    join(out, "runs/fig7-screw/result.json"),
    JSON.stringify({ kind: "fig7", id: "fig7-screw" }),
  );
  const { code, err } = await run("cli/reproduce.ts", ["--collect", out]);
  assert.equal(code, 1);
  assert.equal(
    err.trim(),
    `reproduce: 6 of 7 runs have not finished in ${out}: fig4, pretrain-screw-s1, screw-ae-s1, ` +
      `screw-stn-frozen-s1, screw-stn-random-s1, screw-stn-finetuned-s1. Run them (--resume, or --only RUN_ID ` +
      `as --plan prints), or pass --partial to report the rest`,
  );
  assert.deepEqual(await filesIn(out), ["protocol.json", "runs"]);
  await Deno.remove(out, { recursive: true });
});

// --- report ---

Deno.test("report tables never mark an n/a cell as the best of its row", () => {
  const undefinedFigures = (rocAuc: number | null): DetectionFigures => ({
    rocAuc,
    averagePrecision: null,
    iouAuc: null,
    aupro: null,
    imageAuroc: null,
    f1: null,
    f1Threshold: null,
    undefinedReasons: ["no defect pixel in the test set"],
  });
  const results: ConfigurationResult[] = CONFIGURATIONS.map((configuration, k) => ({
    kind: "configuration",
    id: `screw-${configuration}-s1`,
    seconds: 1,
    className: "screw",
    configuration,
    seed: 1,
    curve: [],
    mse255: 1,
    ssim: 0.5,
    detection: { ssim: undefinedFigures(k === 0 ? null : 0.5 + k / 10), l2: undefinedFigures(null) },
    imagesPerSecond: 1,
    trainSeconds: 1,
    exampleGrid: null,
  }));
  const table = detectionTable("screw", results);
  for (const row of table.rows) {
    for (const cell of row) if (cell.text === "n/a") assert.ok(!cell.best, `${row[0].text} ${row[1].text}`);
  }
  const rocSsim = table.rows[0].slice(2);
  assert.deepEqual(rocSsim.map((c) => c.best), [false, false, false, true]);
});
