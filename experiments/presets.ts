/**
 * How big a reproduction is. `smoke` proves the pipeline end to end in CI (its numbers mean nothing);
 * `default` is the smallest run, by measurement, in which the plain AE learns every embedded class (the
 * report's training check) on each of 3 seeds; `paper` is Sections 6.1, 7 and 8.1 as printed.
 */
import { DEFAULT_SYNTHETIC, type SyntheticOptions } from "../data/synthetic/classes.ts";

export interface Preset {
  name: string;
  /** Training + validation patches per class (80/20). */
  samples: number;
  /** Autoencoder training epochs and batch size. */
  epochs: number;
  /** Epochs for the named classes instead of `epochs`: a class that needs more images to be learned. */
  classEpochs?: Record<string, number>;
  batchSize: number;
  /** STN pre-training epochs, batch size and learning rate. */
  pretrainEpochs: number;
  pretrainBatchSize: number;
  pretrainLr: number;
  seeds: number[];
  /** Size and counts of the embedded (generated) classes. */
  synthetic: SyntheticOptions;
  /** Angle step of the Fig. 7 loss-versus-angle sweep, degrees. */
  fig7Step: number;
  /** Rotated copies per held-out patch when measuring the orientation spread. */
  spreadCopies: number;
}

export const PRESETS: Record<string, Preset> = {
  smoke: {
    name: "smoke",
    samples: 20,
    epochs: 1,
    batchSize: 8,
    pretrainEpochs: 1,
    pretrainBatchSize: 8,
    pretrainLr: 1e-3,
    seeds: [1],
    synthetic: { seed: 0, size: 256, trainGood: 4, testGood: 2, defective: 4 },
    fig7Step: 30,
    spreadCopies: 8,
  },
  // Sized from learning curves of the plain AE on wasm (batch 8, He init, Adam lr 2e-4; docs/initialisation.md):
  // both textures fall below half the average image's MSE by 1,600 training images, the screw only by 6,400,
  // so the textures get one epoch of 2,400 patches and the screw four (9,600 images; three left seed 1 at
  // 0.501). Three seeds, so that each claim is judged against the seed-to-seed spread. 116 minutes of run time on a
  // 2-core machine: the 30 gave way to "every class learned" and "3 seeds" (README, the default run).
  default: {
    name: "default",
    samples: 3000,
    epochs: 1,
    classEpochs: { screw: 4 },
    batchSize: 8,
    pretrainEpochs: 6,
    pretrainBatchSize: 32,
    pretrainLr: 1e-3,
    seeds: [1, 2, 3],
    synthetic: DEFAULT_SYNTHETIC,
    fig7Step: 1,
    spreadCopies: 36,
  },
  paper: {
    name: "paper",
    samples: 10000,
    epochs: 200,
    batchSize: 16,
    pretrainEpochs: 50,
    pretrainBatchSize: 32,
    pretrainLr: 2e-4,
    seeds: [1, 2, 3, 4, 5],
    synthetic: DEFAULT_SYNTHETIC,
    fig7Step: 1,
    spreadCopies: 36,
  },
};

/** The autoencoder's training epochs for one class. */
export function epochsOf(preset: Preset, className: string): number {
  return preset.classEpochs?.[className] ?? preset.epochs;
}

export function presetNamed(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}", expected one of ${Object.keys(PRESETS).join(", ")}`);
  return p;
}
