/**
 * `deno task learning-curves`: the plain AE's validation loss, held-out MSE fraction and SSIM against
 * training images seen, per class and initialisation (experiments/learning_curve.ts). See `--help`.
 */
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import "../backends.ts";
import { deviceNames, openDevice, parseThreads, setDeviceOptions } from "../engine/device.ts";
import type { ClassSet } from "../data/class_set.ts";
import { type PatchSet, prepareTestSet, prepareTrainingSets } from "../data/prepare.ts";
import { DEFAULT_SYNTHETIC, SYNTHETIC_CLASSES, syntheticClass } from "../data/synthetic/classes.ts";
import { openValidatedClassFolder } from "../data/validate_folder.ts";
import { writeFileAtomic } from "../engine/atomic_write.ts";
import {
  type CurvePoint,
  firstBelow,
  goodTestPatches,
  type LearningCurve,
  learningCurve,
} from "../experiments/learning_curve.ts";
import { PRESETS } from "../experiments/presets.ts";
import { LEARNED_FRACTION } from "../report/claims.ts";
import type { AutoencoderInit } from "../models/autoencoder.ts";

const HELP = `deno task learning-curves [options]

Trains the plain AE (Table 1, Adam lr 2e-4, weight decay 1e-5) on each class and initialisation and measures,
every --every training images: the validation loss, and on the held-out test/good patches the MSE as a
fraction of the average training image's and the mean SSIM (the training check of the report). Prints one
line per measurement and a summary table; writes every point to --out.

Options:
  --classes LIST   embedded classes (default: ${SYNTHETIC_CLASSES.join(",")})
  --data DIR       an MVTec AD-layout class folder instead (repeatable)
  --inits LIST     he, torch or both (default: he)
  --images N       training images per curve (default 24000)
  --every N        training images between measurements (default 1600)
  --batch N        batch size (default ${PRESETS.default.batchSize}, the default preset's)
  --samples N      training + validation patches, 80/20 (default ${PRESETS.default.samples}, the default preset's)
  --seed N         initialisation and shuffling seed (default 1)
  --lr X           Adam's learning rate (default 2e-4, the paper's)
  --device NAME    auto or ${deviceNames().join(", ")}
  --threads N      threads of a CPU-side device
  --out FILE       JSON output (default runs/learning-curves-<timestamp>.json)
  --export DIR     write each class's prepared patches (train, validation, test/good) to DIR/CLASS.bin with
                   DIR/CLASS.json, for scripts/ae_curves.py (the same curves in PyTorch), and train nothing
  --no-cache       prepare the patches afresh (for a generator being edited: the patch cache is keyed on
                   the generator's version number, not its code)

Example:
  deno task learning-curves --classes texture1 --inits he,torch --images 8000 --every 800 --device wasm
`;

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} ${value}: expected a positive whole number`);
  return n;
}

async function classSets(data: string[], classes: string | undefined): Promise<ClassSet[]> {
  if (data.length) {
    const sets = [];
    for (const dir of data) {
      const set = await openValidatedClassFolder(resolve(dir), (line) => console.error(`${dir}: ${line}`));
      sets.push({ ...set, name: basename(resolve(dir)) });
    }
    return sets;
  }
  const names = classes?.split(",").map((s) => s.trim()) ?? [...SYNTHETIC_CLASSES];
  return names.map((name) => {
    if (!(SYNTHETIC_CLASSES as readonly string[]).includes(name)) {
      throw new Error(`--classes: no embedded class "${name}"; have ${SYNTHETIC_CLASSES.join(", ")}`);
    }
    return syntheticClass(name as typeof SYNTHETIC_CLASSES[number], DEFAULT_SYNTHETIC);
  });
}

/**
 * DIR/NAME.json (per set: n, channels, size and the byte offsets of its arrays in NAME.bin) and DIR/NAME.bin
 * (images float32 [N, C, S, S], then content uint8 [N, S, S], set after set).
 */
async function exportPatches(dir: string, name: string, sets: Record<string, PatchSet>): Promise<void> {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const put = (array: Float32Array | Uint8Array) => {
    parts.push(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    offset += array.byteLength;
    return offset - array.byteLength;
  };
  const header = Object.fromEntries(
    Object.entries(sets).map(([key, p]) => [key, {
      n: p.n,
      channels: p.channels,
      size: p.size,
      images: put(p.images),
      content: put(p.content),
    }]),
  );
  const bin = new Uint8Array(offset);
  parts.reduce((at, part) => (bin.set(part, at), at + part.byteLength), 0);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, `${name}.bin`), bin);
  await Deno.writeTextFile(join(dir, `${name}.json`), JSON.stringify(header));
}

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;

function pointLine(className: string, init: string, p: CurvePoint): string {
  return `${className} ${init}: ${p.images} images (step ${p.step}): validation loss ${
    p.valLoss.toFixed(5)
  }, MSE ${p.mse255.toFixed(1)} = ${p.mseFraction.toFixed(3)} of the average image's, SSIM ${
    p.ssim.toFixed(3)
  } [${p.seconds.toFixed(0)} s]`;
}

function summaryTable(curves: { className: string; init: string; curve: LearningCurve }[]): string {
  const at = (p: CurvePoint | null) => (p ? `${p.images} (step ${p.step})` : "not reached");
  return [
    row([
      "class",
      "init",
      "images to MSE ≤ 0.8 of the average image's",
      `to ≤ ${LEARNED_FRACTION} (learned)`,
      "last: images",
      "MSE fraction",
      "SSIM",
      "validation loss",
      "average image: MSE, SSIM",
      "images/s",
    ]),
    row(Array(10).fill("---")),
    ...curves.map(({ className, init, curve }) => {
      const last = curve.points.at(-1)!;
      return row([
        className,
        init,
        at(firstBelow(curve.points, 0.8)),
        at(firstBelow(curve.points, LEARNED_FRACTION)),
        last.images,
        last.mseFraction.toFixed(3),
        last.ssim.toFixed(3),
        last.valLoss.toFixed(5),
        `${curve.baseline.mse255.toFixed(1)}, ${curve.baseline.ssim.toFixed(3)}`,
        curve.imagesPerSecond.toFixed(1),
      ]);
    }),
  ].join("\n");
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      classes: { type: "string" },
      data: { type: "string", multiple: true, default: [] },
      inits: { type: "string", default: "he" },
      images: { type: "string" },
      every: { type: "string" },
      batch: { type: "string" },
      samples: { type: "string" },
      seed: { type: "string" },
      lr: { type: "string" },
      device: { type: "string", default: "auto" },
      threads: { type: "string" },
      out: { type: "string" },
      export: { type: "string" },
      "no-cache": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return console.log(HELP);
  const inits = values.inits!.split(",").map((s) => s.trim());
  for (const init of inits) {
    if (init !== "he" && init !== "torch") {
      throw new Error(`--inits ${values.inits}: expected he and/or torch`);
    }
  }
  const lr = values.lr === undefined ? undefined : Number(values.lr);
  if (lr !== undefined && !(lr > 0 && Number.isFinite(lr))) {
    throw new Error(`--lr ${values.lr}: expected > 0`);
  }
  const settings = {
    images: positive("images", values.images, 24000),
    every: positive("every", values.every, 1600),
    batchSize: positive("batch", values.batch, PRESETS.default.batchSize),
    samples: positive("samples", values.samples, PRESETS.default.samples),
    seed: positive("seed", values.seed, 1),
    lr,
  };
  const sets = await classSets(values.data!, values.classes);
  const cacheDir = values["no-cache"] ? null : undefined;
  if (values.export) {
    for (const set of sets) {
      const { train, validation } = await prepareTrainingSets(set, {
        samples: settings.samples,
        seed: 1,
        cacheDir,
      });
      const heldOut = goodTestPatches(await prepareTestSet(set, { cacheDir }), set);
      await exportPatches(values.export, set.name, { train, validation, heldOut });
      console.error(
        `${set.name}: ${train.n} training, ${validation.n} validation, ${heldOut.n} held-out patches`,
      );
    }
    return;
  }
  setDeviceOptions({ threads: parseThreads(values.threads) });
  const device = await openDevice(values.device!);
  const out = values.out ??
    join("runs", `learning-curves-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  console.error(`learning-curves on ${device.name}: ${sets.map((s) => s.name).join(", ")}; inits ${inits}`);
  const curves: { className: string; init: AutoencoderInit; curve: LearningCurve }[] = [];
  for (const set of sets) {
    const { train, validation } = await prepareTrainingSets(set, {
      samples: settings.samples,
      seed: 1,
      cacheDir,
    });
    const heldOut = goodTestPatches(await prepareTestSet(set, { cacheDir }), set);
    for (const init of inits as AutoencoderInit[]) {
      const curve = await learningCurve({
        train,
        validation,
        heldOut,
        device,
        init,
        ...settings,
        onPoint: (p) => console.error(pointLine(set.name, init, p)),
      });
      curves.push({ className: set.name, init, curve });
      await Deno.mkdir(resolve(out, ".."), { recursive: true });
      await writeFileAtomic(out, JSON.stringify({ device: device.name, settings, curves }, null, 1));
    }
  }
  console.log(summaryTable(curves));
  console.error(`learning-curves: ${resolve(out)}`);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`learning-curves: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
