/**
 * The paper's protocol as a list of independent runs, each writing `runs/<id>/result.json`:
 *
 *   fig4                      rotate by 45° and back with both samplers (Fig. 4), on the first class
 *   fig7-<class>              Eq. 7 against the rotation angle for two training patches (Fig. 7)
 *   pretrain-<class>-s<seed>  STN orientation pre-training and the orientation spread (Section 6)
 *   <class>-<config>-s<seed>  one configuration of Section 8.1, then its evaluation (Tables 3-8)
 *
 * Configurations 3 and 4 need the pre-training run of their class and seed. A run whose result.json
 * exists is finished; an interrupted one resumes from its last checkpoint.
 */
import { join } from "node:path";
import type { Backend } from "../engine/backend.ts";
import { type ClassSet, GOOD } from "../data/class_set.ts";
import { writePngFile } from "../data/image_file.ts";
import { type PatchSet, prepareTestSet, prepareTrainingSets } from "../data/prepare.ts";
import { storeDetectionSettings } from "../detect/detector.ts";
import { writeFileAtomic } from "../engine/atomic_write.ts";
import { averageImageBaseline, detection, reconstructionQuality, type Reconstructions } from "./evaluate.ts";
import { exampleGrid, mostDefective } from "./example_grid.ts";
import { samplerRoundTrip } from "./fig4.ts";
import { epochsOf, type Preset } from "./presets.ts";
import {
  type Configuration,
  type ConfigurationResult,
  CONFIGURATIONS,
  type Fig7Result,
  type PretrainResult,
  type RunResult,
  type Untimed,
} from "./results.ts";
import {
  heldOutCopies,
  lossVersusAngleCurves,
  reconstructTestSet,
  runConfiguration,
  runPretrainStn,
  type TestReconstructions,
} from "./runs.ts";

export interface RunSpec {
  id: string;
  kind: RunResult["kind"];
  className: string;
  seed: number;
  configuration?: Configuration;
  /** Runs whose results this one reads. */
  needs: string[];
}

const pretrainId = (className: string, seed: number) => `pretrain-${className}-s${seed}`;
const NEEDS_PRETRAINING: readonly Configuration[] = ["stn-frozen", "stn-finetuned"];

/** Every run of the protocol, in an order that satisfies `needs`, one class after another. */
export function planRuns(classes: readonly string[], seeds: readonly number[]): RunSpec[] {
  const runs: RunSpec[] = [{ id: "fig4", kind: "fig4", className: classes[0], seed: seeds[0], needs: [] }];
  for (const className of classes) {
    runs.push({ id: `fig7-${className}`, kind: "fig7", className, seed: seeds[0], needs: [] });
    for (const seed of seeds) {
      runs.push({ id: pretrainId(className, seed), kind: "pretrain", className, seed, needs: [] });
      for (const configuration of CONFIGURATIONS) {
        runs.push({
          id: `${className}-${configuration}-s${seed}`,
          kind: "configuration",
          className,
          seed,
          configuration,
          needs: NEEDS_PRETRAINING.includes(configuration) ? [pretrainId(className, seed)] : [],
        });
      }
    }
  }
  return runs;
}

export interface ProtocolContext {
  out: string;
  preset: Preset;
  device: Backend;
  resume: boolean;
  /** Opens a class by name (embedded generator or validated folder). */
  openClass: (name: string) => Promise<ClassSet>;
}

export const runDir = (out: string, id: string) => join(out, "runs", id);
const resultPath = (out: string, id: string) => join(runDir(out, id), "result.json");

export async function readResult(out: string, id: string): Promise<RunResult | null> {
  try {
    return JSON.parse(await Deno.readTextFile(resultPath(out, id))) as RunResult;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(
      `${resultPath(out, id)} is unreadable (${(e as Error).message}); delete it to redo the run`,
    );
  }
}

interface ClassData {
  set: ClassSet;
  train: PatchSet;
  validation: PatchSet;
  test: PatchSet;
}

/** The prepared data of one class, kept for the runs of that class (the disk cache makes reopening cheap). */
export class DataOfClass {
  #current: { name: string; data: Promise<ClassData> } | null = null;
  constructor(readonly ctx: ProtocolContext) {}

  get(name: string): Promise<ClassData> {
    if (this.#current?.name !== name) this.#current = { name, data: this.#prepare(name) };
    return this.#current.data;
  }

  async #prepare(name: string): Promise<ClassData> {
    const set = await this.ctx.openClass(name);
    // The patch sets do not depend on the run's seed: repeated seeds vary initialisation and order.
    const { train, validation } = await prepareTrainingSets(set, {
      samples: this.ctx.preset.samples,
      seed: 1,
    });
    return { set, train, validation, test: await prepareTestSet(set) };
  }
}

/** Executes one run and writes its result.json; returns the result. */
export async function executeRun(spec: RunSpec, ctx: ProtocolContext, data: DataOfClass): Promise<RunResult> {
  for (const need of spec.needs) {
    if (!(await readResult(ctx.out, need))) {
      throw new Error(`run ${spec.id} needs run ${need}, which has not finished in ${ctx.out}; run it first`);
    }
  }
  const dir = runDir(ctx.out, spec.id);
  await Deno.mkdir(dir, { recursive: true });
  const started = performance.now();
  const d = await data.get(spec.className);
  let result: Untimed<RunResult>;
  switch (spec.kind) {
    case "fig4":
      result = await samplerRoundTrip(
        d.test,
        firstGoodPatch(d),
        45,
        ctx.device,
        dir,
        spec.className,
        spec.id,
      );
      break;
    case "fig7":
      result = await fig7(spec, ctx, d);
      break;
    case "pretrain":
      result = await pretrain(spec, ctx, d, dir);
      break;
    case "configuration":
      result = await configuration(spec, ctx, d, dir);
      break;
  }
  const timed: RunResult = { ...result, seconds: (performance.now() - started) / 1000 };
  await writeFileAtomic(resultPath(ctx.out, spec.id), JSON.stringify(timed, null, 1));
  return timed;
}

function firstGoodPatch(d: ClassData): number {
  const index = [...d.test.imageIndex!].findIndex((image) => d.set.test[image].defect === GOOD);
  if (index < 0) throw new Error(`class ${d.set.name} has no test/good image for the Fig. 4 round trip`);
  return index;
}

async function fig7(spec: RunSpec, ctx: ProtocolContext, d: ClassData): Promise<Untimed<Fig7Result>> {
  const curves = await lossVersusAngleCurves(d.train, [0, 1], ctx.device, { step: ctx.preset.fig7Step });
  return {
    kind: "fig7",
    id: spec.id,
    className: spec.className,
    samples: curves.map((c) => ({
      name: `patch ${c.patch} (recorded at ${c.recordedAngle.toFixed(0)}°)`,
      angles: c.curve.map((p) => p.angle),
      losses: c.curve.map((p) => p.loss),
    })),
  };
}

async function pretrain(
  spec: RunSpec,
  ctx: ProtocolContext,
  d: ClassData,
  dir: string,
): Promise<Untimed<PretrainResult>> {
  const p = ctx.preset;
  const run = await runPretrainStn({
    train: d.train,
    validation: d.validation,
    device: ctx.device,
    seed: spec.seed,
    epochs: p.pretrainEpochs,
    batchSize: p.pretrainBatchSize,
    lr: p.pretrainLr,
    outDir: dir,
    resume: ctx.resume,
    copies: await heldOutCopies(d.set, p.spreadCopies),
  });
  return {
    kind: "pretrain",
    id: spec.id,
    className: spec.className,
    seed: spec.seed,
    lr: run.lr,
    steps: run.steps,
    before: run.spreadBefore,
    after: run.spreadAfter,
    curve: run.lossCurve,
    weights: "weights.safetensors",
  };
}

/** The test patches of defect-free images: the held-out patches of Tables 3-5. */
function goodPatches(r: TestReconstructions, set: ClassSet): Reconstructions {
  const [, c, h, w] = r.shape, image = c * h * w;
  const keep = [...r.imageIndex!.keys()].filter((k) => set.test[r.imageIndex![k]].defect === GOOD);
  const pick = (src: Float32Array) => {
    const out = new Float32Array(keep.length * image);
    keep.forEach((k, i) => out.set(src.subarray(k * image, (k + 1) * image), i * image));
    return out;
  };
  return { shape: [keep.length, c, h, w], input: pick(r.input), output: pick(r.output), content: r.content };
}

async function configuration(
  spec: RunSpec,
  ctx: ProtocolContext,
  d: ClassData,
  dir: string,
): Promise<Untimed<ConfigurationResult>> {
  const p = ctx.preset, configuration = spec.configuration!;
  const started = performance.now();
  const run = await runConfiguration({
    configuration,
    pretrainedStn: spec.needs.length ? join(runDir(ctx.out, spec.needs[0]), "weights.safetensors") : null,
    train: d.train,
    validation: d.validation,
    device: ctx.device,
    seed: spec.seed,
    epochs: epochsOf(p, spec.className),
    batchSize: p.batchSize,
    outDir: dir,
    resume: ctx.resume,
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const recon = await reconstructTestSet({
    configuration,
    weightsPath: run.weightsPath,
    test: d.test,
    device: ctx.device,
  });
  const heldOut = goodPatches(recon, d.set);
  const quality = await reconstructionQuality(heldOut, ctx.device);
  const baseline = await averageImageBaseline(d.train, heldOut, ctx.device);
  const found = await detection(recon, ctx.device);
  await storeDetectionSettings(run.weightsPath, {
    thresholds: {
      ...(found.ssim.f1Threshold !== null ? { ssim: found.ssim.f1Threshold } : {}),
      ...(found.l2.f1Threshold !== null ? { l2: found.l2.f1Threshold } : {}),
    },
  });
  const [n, , h, w] = recon.shape;
  const shown = mostDefective(recon.defects, n, h * w, 4);
  await writePngFile(join(dir, "examples.png"), exampleGrid(recon, found.ssimResidual, shown));
  return {
    kind: "configuration",
    id: spec.id,
    className: spec.className,
    configuration,
    seed: spec.seed,
    curve: run.curve.map(({ epoch, step, trainLoss, valLoss }) => ({ epoch, step, trainLoss, valLoss })),
    mse255: quality.mse255,
    ssim: quality.ssim,
    averageImage: baseline,
    detection: { ssim: found.ssim, l2: found.l2 },
    imagesPerSecond: run.imagesPerSecond,
    trainSeconds,
    exampleGrid: "examples.png",
  };
}
