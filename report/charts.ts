/**
 * The figures as vega-lite specs, rendered to SVG inside Deno (no browser, no network). Every spec
 * is written next to its SVG so a reader can re-plot it.
 */
import * as vl from "vega-lite";
import * as vega from "vega";
import {
  CONFIGURATION_LABELS,
  type ConfigurationResult,
  type Fig4Result,
  type Fig7Result,
  type PretrainResult,
} from "../experiments/results.ts";

// deno-lint-ignore no-explicit-any
export type VegaLiteSpec = Record<string, any>;

export interface Chart {
  name: string;
  title: string;
  spec: VegaLiteSpec;
}

const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** Fig. 3: per-epoch training and validation loss of every configuration, one panel per class. */
export function learningCurves(results: ConfigurationResult[]): Chart {
  const values = results.flatMap((r) =>
    r.curve.flatMap((e) => [
      {
        class: r.className,
        configuration: CONFIGURATION_LABELS[r.configuration],
        seed: r.seed,
        epoch: e.epoch,
        split: "train",
        loss: e.trainLoss,
      },
      {
        class: r.className,
        configuration: CONFIGURATION_LABELS[r.configuration],
        seed: r.seed,
        epoch: e.epoch,
        split: "validation",
        loss: e.valLoss,
      },
    ])
  );
  return {
    name: "fig3_learning_curves",
    title: "Fig. 3: learning curves (L2 loss over the content region; mean over seeds)",
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { column: { field: "class", type: "nominal" } },
      spec: {
        width: 260,
        height: 200,
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "epoch", type: "quantitative" },
          y: {
            aggregate: "mean",
            field: "loss",
            type: "quantitative",
            scale: { type: "log" },
            title: "loss",
          },
          color: { field: "configuration", type: "nominal" },
          strokeDash: { field: "split", type: "nominal" },
        },
      },
      resolve: { scale: { y: "independent" } },
    },
  };
}

/** Fig. 4, second row: histograms of the round-trip error of both samplers. */
export function samplerHistograms(fig4: Fig4Result): Chart {
  const values = fig4.samplers.flatMap((s) =>
    s.histogram.map((h) => ({ sampler: s.sampler, from: h.from, to: h.to, count: h.count }))
  );
  return {
    name: "fig4_sampler_histograms",
    title: `Fig. 4: histograms of |rotate ${fig4.angle}° then back − input| (0-255)`,
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { column: { field: "sampler", type: "nominal" } },
      spec: {
        width: 280,
        height: 180,
        mark: "bar",
        encoding: {
          x: { field: "from", type: "quantitative", bin: { binned: true }, title: "|error| (grey levels)" },
          x2: { field: "to" },
          y: { field: "count", type: "quantitative", scale: { type: "symlog" }, title: "pixels" },
        },
      },
    },
  };
}

/** Fig. 7: the orientation loss (Eq. 7) against the rotation angle. */
export function lossVersusAngle(fig7: Fig7Result[]): Chart {
  const values = fig7.flatMap((f) =>
    f.samples.flatMap((s) =>
      s.angles.map((a, i) => ({ class: f.className, sample: s.name, angle: a, loss: s.losses[i] }))
    )
  );
  return {
    name: "fig7_loss_vs_angle",
    title: "Fig. 7: orientation loss (Eq. 7) against the rotation angle",
    spec: {
      $schema: SCHEMA,
      data: { values },
      facet: { column: { field: "class", type: "nominal" } },
      spec: {
        width: 300,
        height: 200,
        mark: "line",
        encoding: {
          x: { field: "angle", type: "quantitative", title: "rotation (degrees)" },
          y: { field: "loss", type: "quantitative", scale: { zero: false } },
          color: { field: "sample", type: "nominal" },
        },
      },
    },
  };
}

/** The STN pre-training loss per epoch. */
export function pretrainCurves(results: PretrainResult[]): Chart {
  const values = results.flatMap((r) =>
    r.curve.map((e) => ({ class: r.className, seed: r.seed, epoch: e.epoch, loss: e.trainLoss }))
  );
  return {
    name: "stn_pretraining",
    title: "STN pre-training: orientation loss per epoch",
    spec: {
      $schema: SCHEMA,
      data: { values },
      width: 360,
      height: 200,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "epoch", type: "quantitative" },
        y: { aggregate: "mean", field: "loss", type: "quantitative", scale: { zero: false } },
        color: { field: "class", type: "nominal" },
      },
    },
  };
}

/** Render a vega-lite spec to a standalone SVG string. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vl.compile(spec as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
