/**
 * deno task train: one training run described by a JSON file; see HELP. Ctrl-C stops after the current
 * step and keeps the last checkpoint, which `--resume` continues from.
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { DeviceName, Sampler } from "../engine/backend.ts";
import "../backends.ts";
import { deviceNames, openDevice, parseThreads, setDeviceOptions } from "../engine/device.ts";
import { type ClassSet, withDefects } from "../data/class_set.ts";
import { prepareTrainingSets } from "../data/prepare.ts";
import { SYNTHETIC_CLASSES, syntheticClass, type SyntheticClassName } from "../data/synthetic/classes.ts";
import { openValidatedClassFolder } from "../data/validate_folder.ts";
import { heldOutCopies, runConfiguration, runPretrainStn } from "../experiments/runs.ts";
import { currentCheckpoint } from "../train/checkpoint.ts";
import { writeFileAtomic } from "../engine/atomic_write.ts";
import { checkPretrainedStn, configurationNamed, PAPER_LEARNING_RATE } from "../train/configurations.ts";
import type { AutoencoderInit } from "../models/autoencoder.ts";
import { callerPath } from "./caller_path.ts";

export const HELP = `deno task train --config FILE [--resume] [--device auto|${
  deviceNames().join("|")
}] [--threads N] [--out DIR] [--defects LIST]

Trains one model as the JSON file says, with a progress bar on stderr, a checkpoint after every epoch and
per-epoch losses in DIR/log.jsonl; DIR/weights.safetensors and DIR/result.json are written at the end.

Config fields (defaults in brackets)
  class          an embedded class (${SYNTHETIC_CLASSES.join(", ")}) or an MVTec AD class folder
  run            "pretrain" (the STN's orientation pre-training, Eq. 7) or a configuration of Section 8.1:
                 "ae", "stn-random", "stn-frozen", "stn-finetuned" (or 1-4)
  out            the run folder
  samples        training + validation patches, 80/20 [2000]; at least 3, so that validation gets one
  epochs [10]    batchSize [16; 32 for pretrain]    seed [1]
  lr             Adam's learning rate [2e-4; 1e-3 for pretrain, which learned nothing at 2e-4 in the
                 reference run]; weight decay is the paper's 1e-5
  pretrainedStn  weights.safetensors of a "pretrain" run (configurations stn-frozen and stn-finetuned)
  channels [the class's]   latent [100]   sampler ["exact"; "naive" is the TF STN sampler]
  init           the AE's initialisation: "he" (He's, for LeakyReLU 0.2) or "torch" (PyTorch's default) ["he"]
  device ["auto"]
  spreadCopies   rotated copies of a held-out patch for the orientation spread (pretrain) [36]

--threads N sets the threads of a CPU-side device (default: every core, ${navigator.hardwareConcurrency} here).
--defects LIST keeps only these defect types (and test/good) of the class, e.g. thread_top for the MVTec
screw as the paper evaluates it; each must be a defect type of the class. Training reads no defective image,
so the list is checked and recorded in result.json for the evaluation (reproduce --defects does that).

Example
  {"class": "screw", "run": "pretrain", "out": "runs/screw-stn", "epochs": 4}
  {"class": "screw", "run": "stn-frozen", "out": "runs/screw-3", "pretrainedStn": "runs/screw-stn/weights.safetensors"}

A class folder is validated (every image decoded) before any work. Relative paths, on the command line and
in the file, are taken from the folder the command runs in. --resume continues the run in the out folder
from its last checkpoint, and refuses a config that differs from the one the run started with.`;

interface TrainConfig {
  class: string;
  run: string;
  out: string;
  samples: number;
  epochs: number;
  batchSize?: number;
  seed: number;
  lr?: number;
  pretrainedStn: string | null;
  channels?: 1 | 3;
  latent: number;
  init: AutoencoderInit;
  sampler: Sampler;
  device: DeviceName;
  spreadCopies: number;
}

const DEFAULTS = {
  samples: 2000,
  epochs: 10,
  seed: 1,
  pretrainedStn: null,
  latent: 100,
  init: "he",
  sampler: "exact",
  device: "auto",
  spreadCopies: 36,
};

/** What each field must be, as a check and the words of its error. */
const FIELDS: Record<keyof TrainConfig, [(v: unknown) => boolean, string]> = {
  class: [(v) => typeof v === "string", "a class name or folder"],
  run: [
    (v) => v === "pretrain" || (typeof v === "string" && !!configurationNamed(v)),
    "pretrain or a configuration",
  ],
  out: [(v) => typeof v === "string" && v.length > 0, "a folder"],
  // 80/20: round(0.2 * samples) validation patches, so 3 is the least that validates on something.
  samples: [
    (v) => Number.isInteger(v) && (v as number) >= 3,
    "an integer >= 3 (the 20% validation part of 2 rounds to no patch at all)",
  ],
  epochs: [(v) => Number.isInteger(v) && (v as number) >= 1, "a positive integer"],
  batchSize: [(v) => Number.isInteger(v) && (v as number) >= 1, "a positive integer"],
  seed: [Number.isInteger, "an integer"],
  lr: [(v) => typeof v === "number" && v > 0 && Number.isFinite(v), "a positive number"],
  pretrainedStn: [(v) => v === null || typeof v === "string", "a weights file"],
  channels: [(v) => v === 1 || v === 3, "1 or 3"],
  latent: [(v) => Number.isInteger(v) && (v as number) >= 1, "a positive integer"],
  init: [(v) => v === "he" || v === "torch", `"he" or "torch"`],
  sampler: [(v) => v === "exact" || v === "naive", `"exact" or "naive"`],
  device: [(v) => v === "auto" || deviceNames().includes(v as string), `"auto" or one of ${deviceNames()}`],
  spreadCopies: [(v) => Number.isInteger(v) && (v as number) >= 2, "an integer >= 2"],
};

export function parseConfig(text: string, file: string): TrainConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not JSON: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${file} must hold a JSON object`);
  }
  const config = { ...DEFAULTS, ...raw } as Record<string, unknown>;
  for (const [key, value] of Object.entries(config)) {
    const field = FIELDS[key as keyof TrainConfig];
    if (!field) {
      throw new Error(`${file}: unknown field "${key}", expected one of ${Object.keys(FIELDS).join(", ")}`);
    }
    let ok;
    try {
      ok = field[0](value);
    } catch {
      ok = false;
    }
    if (!ok) throw new Error(`${file}: ${key} is ${JSON.stringify(value)}, expected ${field[1]}`);
  }
  for (const key of ["class", "run", "out"]) {
    if (!(key in config)) throw new Error(`${file}: "${key}" is missing`);
  }
  return config as unknown as TrainConfig;
}

const isEmbedded = (name: string) => (SYNTHETIC_CLASSES as readonly string[]).includes(name);

/** An embedded class, or a class folder validated in full (every image decoded) before any work. */
async function classSet(name: string): Promise<ClassSet> {
  return isEmbedded(name)
    ? syntheticClass(name as SyntheticClassName)
    : await openValidatedClassFolder(name, (line) => console.error(line));
}

/** What a run's results depend on; `--resume` refuses a config that differs in any of these. */
interface RunIdentity {
  class: string;
  run: string;
  lr: number;
  seed: number;
  batchSize: number;
  samples: number;
  channels: 1 | 3 | "the class's";
  latent: number;
  init: AutoencoderInit;
  sampler: Sampler;
}

const IDENTITY_FILE = "train-config.json";

function identityOf(config: TrainConfig): RunIdentity {
  const pretrain = config.run === "pretrain";
  return {
    class: config.class,
    run: pretrain ? "pretrain" : configurationNamed(config.run).name,
    lr: config.lr ?? (pretrain ? 1e-3 : PAPER_LEARNING_RATE),
    seed: config.seed,
    batchSize: config.batchSize ?? (pretrain ? 32 : 16),
    samples: config.samples,
    channels: config.channels ?? "the class's",
    latent: config.latent,
    init: config.init,
    sampler: config.sampler,
  };
}

/**
 * Before any work: a fresh run must not find a checkpoint in `out`; a resumed one must have been started
 * with the same config (train-config.json, written when a run starts), or it refuses naming what differs.
 */
async function checkRunFolder(out: string, resume: boolean, identity: RunIdentity): Promise<void> {
  const checkpoint = await currentCheckpoint(out);
  if (!resume) {
    if (checkpoint) {
      throw new Error(
        `${out} already holds a checkpoint at epoch ${checkpoint.epoch}: continue it with --resume, ` +
          `or choose another out`,
      );
    }
    return;
  }
  let recorded: RunIdentity;
  try {
    recorded = JSON.parse(await Deno.readTextFile(join(out, IDENTITY_FILE)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return; // nothing to compare with: a run started before the file
    throw new Error(`${join(out, IDENTITY_FILE)} is unreadable (${(e as Error).message})`);
  }
  const show = (v: unknown) => JSON.stringify(v);
  const differ = (Object.keys(identity) as (keyof RunIdentity)[])
    .filter((key) => show(recorded[key]) !== show(identity[key]))
    .map((key) => `${key} ${show(recorded[key])} there, ${show(identity[key])} here`);
  if (differ.length > 0) {
    throw new Error(
      `--resume: the run in ${out} was started with another config (${join(out, IDENTITY_FILE)}): ` +
        `${differ.join("; ")}. Resume with the same config, or choose another out`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      resume: { type: "boolean", default: false },
      device: { type: "string" },
      threads: { type: "string" },
      out: { type: "string" },
      defects: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || !values.config) {
    console.log(HELP);
    if (!values.help) Deno.exit(2);
    return;
  }
  const file = callerPath(values.config);
  const parsed = parseConfig(await Deno.readTextFile(file), values.config);
  const config = {
    ...parsed,
    class: isEmbedded(parsed.class) ? parsed.class : callerPath(parsed.class),
    pretrainedStn: parsed.pretrainedStn === null ? null : callerPath(parsed.pretrainedStn),
  };
  const out = callerPath(values.out ?? config.out);
  const deviceName = values.device ?? config.device;
  if (!FIELDS.device[0](deviceName)) throw new Error(`--device ${deviceName}, expected ${FIELDS.device[1]}`);
  const identity = identityOf(config);
  await checkRunFolder(out, values.resume, identity);
  if (config.pretrainedStn) await checkPretrainedStn(config.pretrainedStn);
  const defects = values.defects?.split(",").map((d) => d.trim()).filter((d) => d) ?? null;
  const whole = await classSet(config.class);
  const set = defects ? withDefects(whole, defects) : whole;
  setDeviceOptions({ threads: parseThreads(values.threads) });
  const device = await openDevice(deviceName as string);
  const { train, validation } = await prepareTrainingSets(set, {
    samples: config.samples,
    seed: config.seed,
    channels: config.channels,
  });
  await Deno.mkdir(out, { recursive: true });
  await writeFileAtomic(join(out, IDENTITY_FILE), JSON.stringify(identity, null, 1) + "\n");
  const stop = new AbortController();
  Deno.addSignalListener("SIGINT", () => {
    console.error(`\nstopping after this step; continue with --resume (checkpoints in ${out})`);
    stop.abort();
  });
  const common = {
    train,
    validation,
    device,
    seed: config.seed,
    epochs: config.epochs,
    outDir: out,
    resume: values.resume,
    latent: config.latent,
    init: config.init,
    sampler: config.sampler,
    signal: stop.signal,
  };
  const result = config.run === "pretrain"
    ? await runPretrainStn({
      ...common,
      batchSize: identity.batchSize,
      lr: identity.lr,
      copies: await heldOutCopies(set, config.spreadCopies, train.channels),
    })
    : await runConfiguration({
      ...common,
      batchSize: identity.batchSize,
      configuration: config.run,
      pretrainedStn: config.pretrainedStn,
      lr: identity.lr,
    });
  const text = JSON.stringify(
    { config: { ...config, out, ...(defects ? { defects } : {}) }, device: device.name, ...result },
    null,
    2,
  );
  await writeFileAtomic(join(out, "result.json"), text + "\n");
  console.log(text);
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`train: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
