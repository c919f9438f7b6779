/**
 * What every run of the protocol writes (its `result.json`) and what the report reads. Plain JSON,
 * so runs spread over many machines can be collected into one report.
 */

import type { OrientationSpread } from "../train/orientation.ts";
import {
  type Configuration as ConfigurationSpec,
  CONFIGURATIONS as SECTION_8_1,
} from "../train/configurations.ts";

export type Configuration = ConfigurationSpec["name"];

/** The four configurations in the column order of the paper's tables (3-9). */
export const CONFIGURATIONS: readonly Configuration[] = ["ae", "stn-frozen", "stn-random", "stn-finetuned"];

/** Column heads as the paper abbreviates them. */
export const CONFIGURATION_LABELS = Object.fromEntries(SECTION_8_1.map((c) => [c.name, c.label])) as Record<
  Configuration,
  string
>;

export interface EpochLosses {
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss: number;
}

/** Pixel-level detection figures of one residual kind; null where a metric is undefined (with the reason). */
export interface DetectionFigures {
  rocAuc: number | null;
  averagePrecision: number | null;
  iouAuc: number | null;
  aupro: number | null;
  imageAuroc: number | null;
  f1: number | null;
  f1Threshold: number | null;
  undefinedReasons: string[];
}

export interface ConfigurationResult {
  kind: "configuration";
  id: string;
  /** Wall time of the run. */
  seconds: number;
  className: string;
  configuration: Configuration;
  seed: number;
  curve: EpochLosses[];
  /** Tables 3-5: over held-out defect-free patches, content region only. */
  mse255: number;
  ssim: number;
  /**
   * The same two figures for the average image of the class's training patches on the same held-out
   * patches (experiments/evaluate.ts averageImageBaseline): the training check's baseline. Absent in
   * results written before the check existed.
   */
  averageImage?: { mse255: number; ssim: number };
  detection: { ssim: DetectionFigures; l2: DetectionFigures };
  imagesPerSecond: number;
  trainSeconds: number;
  /** PNG file names (relative to the run folder) of the example grid: input, normalised, reconstruction, residual, truth. */
  exampleGrid: string | null;
}

export interface PretrainResult {
  kind: "pretrain";
  id: string;
  /** Wall time of the run. */
  seconds: number;
  className: string;
  seed: number;
  lr: number;
  steps: number;
  before: OrientationSpread;
  after: OrientationSpread;
  curve: EpochLosses[];
  weights: string;
}

export interface SamplerRoundTrip {
  sampler: "exact" | "naive";
  meanError255: number;
  maxError255: number;
  /** Histogram of |difference| on the 0-255 scale over the content region. */
  histogram: { from: number; to: number; count: number }[];
  differenceImage: string;
}

export interface Fig4Result {
  kind: "fig4";
  id: string;
  /** Wall time of the run. */
  seconds: number;
  className: string;
  angle: number;
  input: string;
  samplers: SamplerRoundTrip[];
}

export interface Fig7Result {
  kind: "fig7";
  id: string;
  /** Wall time of the run. */
  seconds: number;
  className: string;
  samples: { name: string; angles: number[]; losses: number[] }[];
}

export type RunResult = ConfigurationResult | PretrainResult | Fig4Result | Fig7Result;

/** A run's result as its run produces it, before executeRun adds the wall time. */
export type Untimed<R extends RunResult> = R extends RunResult ? Omit<R, "seconds"> : never;

export interface ProtocolSummary {
  preset: string;
  device: string;
  classes: string[];
  seeds: number[];
  startedAt: string;
  wallSeconds: number;
  settings: Record<string, unknown>;
}
