/**
 * The paper's tables (3-9) and ours, as data first, then rendered to Markdown or HTML. Each cell is
 * the mean ± sample std over seeds; the best mean of a row is marked, as the paper sets it in bold.
 */
import { rankConfigurations } from "../eval/ranking.ts";
import { seedSpread } from "../eval/seed_spread.ts";
import {
  type Configuration,
  CONFIGURATION_LABELS,
  type ConfigurationResult,
  CONFIGURATIONS,
  type DetectionFigures,
  type Fig4Result,
  type PretrainResult,
} from "../experiments/results.ts";
import type { OrientationSpread } from "../train/orientation.ts";

export interface Cell {
  text: string;
  best?: boolean;
}
export interface Table {
  title: string;
  head: string[];
  rows: Cell[][];
  note?: string;
}

type Better = "higher" | "lower";

/** Mean ± std over seeds of one figure, or the reason it is undefined. */
export function summarise(values: (number | null)[], digits = 4): { mean: number | null; text: string } {
  const defined = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (defined.length === 0) return { mean: null, text: "n/a" };
  const { mean, std } = seedSpread(defined);
  const partial = defined.length < values.length ? ` (${defined.length}/${values.length} seeds)` : "";
  return {
    mean,
    text: values.length > 1
      ? `${mean.toFixed(digits)} ± ${std.toFixed(digits)}${partial}`
      : mean.toFixed(digits),
  };
}

function figureRow(
  label: string[],
  byConfig: Map<Configuration, ConfigurationResult[]>,
  pick: (r: ConfigurationResult) => number | null,
  better: Better,
  digits = 4,
): Cell[] {
  const cells = CONFIGURATIONS.map((c) => summarise((byConfig.get(c) ?? []).map(pick), digits));
  const means = cells.map((c) => c.mean).filter((m): m is number => m !== null);
  const best = means.length ? (better === "higher" ? Math.max(...means) : Math.min(...means)) : null;
  // An undefined cell ("n/a", mean null) is never the best, not even in a row where every cell is undefined.
  return [
    ...label.map((text) => ({ text })),
    ...cells.map((c) => ({ text: c.text, best: c.mean !== null && c.mean === best })),
  ];
}

export function groupByConfiguration(
  results: ConfigurationResult[],
): Map<Configuration, ConfigurationResult[]> {
  const map = new Map<Configuration, ConfigurationResult[]>();
  for (const r of results) map.set(r.configuration, [...(map.get(r.configuration) ?? []), r]);
  return map;
}

const HEAD = CONFIGURATIONS.map((c) => CONFIGURATION_LABELS[c]);

/** Tables 3-5: reconstruction quality over held-out defect-free patches. */
export function reconstructionTable(className: string, results: ConfigurationResult[]): Table {
  const g = groupByConfiguration(results);
  return {
    title: `Reconstruction quality, ${className} (as Tables 3-5)`,
    head: ["", ...HEAD],
    rows: [
      figureRow(["MSE (0-255)"], g, (r) => r.mse255, "lower", 2),
      figureRow(["SSIM"], g, (r) => r.ssim, "higher"),
    ],
    note:
      "Mean over held-out defect-free patches, content region only; lower MSE and higher SSIM are better.",
  };
}

export const DETECTION_METRICS: { key: keyof DetectionFigures; label: string; inPaper: boolean }[] = [
  { key: "rocAuc", label: "ROC AUC", inPaper: true },
  { key: "averagePrecision", label: "PR AUC (average precision)", inPaper: true },
  { key: "iouAuc", label: "IoU (area under the IoU curve)", inPaper: true },
  { key: "aupro", label: "AUPRO (FPR ≤ 0.3)", inPaper: false },
  { key: "imageAuroc", label: "Image AUROC", inPaper: false },
  { key: "f1", label: "Best F1", inPaper: false },
];

const figure = (r: ConfigurationResult, residual: "ssim" | "l2", key: keyof DetectionFigures) => {
  const v = r.detection[residual][key];
  return typeof v === "number" ? v : null;
};

/** Tables 6-8: pixel-level detection with the SSIM and the L2 residual. */
export function detectionTable(className: string, results: ConfigurationResult[]): Table {
  const g = groupByConfiguration(results);
  const rows: Cell[][] = [];
  for (const residual of ["ssim", "l2"] as const) {
    for (const m of DETECTION_METRICS) {
      rows.push(
        figureRow(
          [residual === "ssim" ? "SSIM" : "L2", m.label],
          g,
          (r) => figure(r, residual, m.key),
          "higher",
        ),
      );
    }
  }
  const reasons = [
    ...new Set(
      results.flatMap((r) => [...r.detection.ssim.undefinedReasons, ...r.detection.l2.undefinedReasons]),
    ),
  ];
  return {
    title: `Defect detection, ${className} (as Tables 6-8, plus AUPRO, image AUROC and F1)`,
    head: ["residual", "metric", ...HEAD],
    rows,
    note: reasons.length ? `n/a: ${reasons.join("; ")}` : undefined,
  };
}

/** Table 9: per class, how often each configuration placed 1st..4th over the paper's six detection metrics. */
export function rankingTable(classes: string[], results: ConfigurationResult[]): Table {
  const rows: Cell[][] = [];
  for (const className of classes) {
    const g = groupByConfiguration(results.filter((r) => r.className === className));
    const columns = (["ssim", "l2"] as const).flatMap((residual) =>
      DETECTION_METRICS.filter((m) => m.inPaper).map((m) => ({
        name: `${residual} ${m.label}`,
        better: "higher" as const,
        values: CONFIGURATIONS.map((c) =>
          summarise((g.get(c) ?? []).map((r) => figure(r, residual, m.key))).mean ?? -Infinity
        ),
      }))
    ).filter((col) => col.values.every(Number.isFinite));
    if (columns.length === 0) continue;
    const { counts } = rankConfigurations([...CONFIGURATIONS], columns);
    CONFIGURATIONS.forEach((_, place) => {
      const row = counts.map((perConfig) => perConfig[place]);
      const most = Math.max(...row);
      rows.push([
        { text: place === 0 ? className : "" },
        { text: ["1st", "2nd", "3rd", "4th"][place] },
        ...row.map((n) => ({ text: String(n), best: n === most && n > 0 })),
      ]);
    });
  }
  return {
    title: "Rankings over the detection metrics (as Table 9)",
    head: ["class", "place", ...HEAD],
    rows,
    note:
      "Metrics: ROC AUC, PR AUC and IoU for the SSIM and the L2 residual (means over seeds); ties share the better place.",
  };
}

/** Circular std in degrees, or "uniform" where the orientations have no mean direction (R ≈ 0). */
export function spreadText(s: OrientationSpread): string {
  return s.meanResultantLength < 1e-3 ? "uniform" : s.circularStdDegrees.toFixed(1);
}

export function pretrainTable(results: PretrainResult[]): Table {
  const classes = [...new Set(results.map((r) => r.className))];
  return {
    title: "STN orientation pre-training (Section 6): spread of the normalised orientation",
    head: [
      "class",
      "seed",
      "lr",
      "steps",
      "circular std before (°)",
      "after (°)",
      "resultant length before",
      "after",
    ],
    rows: classes.flatMap((c) =>
      results.filter((r) => r.className === c).map((r) => [
        { text: c },
        { text: String(r.seed) },
        { text: String(r.lr) },
        { text: String(r.steps) },
        { text: spreadText(r.before) },
        { text: spreadText(r.after) },
        { text: r.before.meanResultantLength.toFixed(3) },
        {
          text: r.after.meanResultantLength.toFixed(3),
          best: r.after.meanResultantLength > r.before.meanResultantLength,
        },
      ])
    ),
    note:
      "Rotated copies of a held-out patch; orientation = input angle + predicted angle, mod 180°. Resultant length: 0 for uniform orientations, 1 for identical ones.",
  };
}

export function samplerTable(fig4: Fig4Result): Table {
  return {
    title:
      `Rotate by ${fig4.angle}° and back (Fig. 4), ${fig4.className}: error in the content region, 0-255 scale`,
    head: ["sampler", "mean |error|", "max |error|"],
    rows: fig4.samplers.map((s) => [
      {
        text: s.sampler === "exact"
          ? "exact (PyTorch grid_sample convention)"
          : "naive (TensorFlow STN, 2016)",
      },
      { text: s.meanError255.toFixed(2) },
      { text: s.maxError255.toFixed(1) },
    ]),
  };
}

export function speedTable(results: ConfigurationResult[]): Table {
  const g = groupByConfiguration(results);
  return {
    title: "Training speed",
    head: ["", ...HEAD],
    rows: [
      figureRow(["images/s"], g, (r) => r.imagesPerSecond, "higher", 1),
      figureRow(["train time (s)"], g, (r) => r.trainSeconds, "lower", 1),
    ],
  };
}

/** One Markdown table row; a `|` inside a cell is escaped so it cannot split the cell. */
export const markdownRow = (cells: string[]) =>
  `| ${cells.map((s) => s.replaceAll("|", "\\|")).join(" | ")} |`;

export function toMarkdown(t: Table): string {
  return [
    `### ${t.title}`,
    "",
    markdownRow(t.head),
    markdownRow(t.head.map(() => "---")),
    ...t.rows.map((r) => markdownRow(r.map((c) => (c.best ? `**${c.text}**` : c.text)))),
    ...(t.note ? ["", t.note] : []),
    "",
  ].join("\n");
}

export function escapeHtml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

export function toHtml(t: Table): string {
  const head = t.head.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const rows = t.rows.map((r) =>
    `<tr>${r.map((c) => `<td${c.best ? ' class="best"' : ""}>${escapeHtml(c.text)}</td>`).join("")}</tr>`
  ).join("\n");
  const note = t.note ? `<p class="note">${escapeHtml(t.note)}</p>` : "";
  return `<h3>${
    escapeHtml(t.title)
  }</h3>\n<table><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>${note}`;
}
