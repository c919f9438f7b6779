/**
 * How big a reproduction is. `smoke` proves the pipeline end to end in CI (its numbers mean nothing);
 * `default` is sized by measurement to finish on a 2-core CPU machine within 45 minutes and still
 * train the plain AE past its average-image plateau; `paper` is Sections 6.1, 7 and 8.1 as printed.
 */
import { DEFAULT_SYNTHETIC, type SyntheticOptions } from "../data/synthetic/classes.ts";

export interface Preset {
  name: string;
  /** Training + validation patches per class (80/20). */
  samples: number;
  /** Autoencoder training epochs and batch size. */
  epochs: number;
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
  // Sized from measured throughput on the 2-core machine (WebGPU on lavapipe, 1-channel classes): the AE
  // trains at about 12 images/s at batch 8 and the STN pre-training at about 150 images/s at batch 32, so
  // 12 runs of 1,920 training patches, 3 pre-trainings of 8 epochs (480 steps; 300 steps normalised every
  // class, the screw's loss was still falling) and the evaluations fill about 45 minutes.
  default: {
    name: "default",
    samples: 2400,
    epochs: 1,
    batchSize: 8,
    pretrainEpochs: 8,
    pretrainBatchSize: 32,
    pretrainLr: 1e-3,
    seeds: [1],
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

export function presetNamed(name: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset "${name}", expected one of ${Object.keys(PRESETS).join(", ")}`);
  return p;
}
