/**
 * Writes the report of a protocol run: report.html (one self-contained page: tables, the paper's
 * claims next to this run's findings, charts as inline SVG, image grids as inline PNG), tables.md,
 * metrics.json (every number, per seed) and charts/*.vl.json + .svg.
 */
import { encodeBase64 } from "./base64.ts";
import {
  type Chart,
  learningCurves,
  lossVersusAngle,
  pretrainCurves,
  renderSvg,
  samplerHistograms,
} from "./charts.ts";
import { checkClaims, classCheck, SEED_RULE, trainingCheck } from "./claims.ts";
import {
  detectionTable,
  escapeHtml,
  markdownRow,
  pretrainTable,
  rankingTable,
  reconstructionTable,
  samplerTable,
  speedTable,
  type Table,
  toHtml,
  toMarkdown,
} from "./tables.ts";
import {
  CONFIGURATION_LABELS,
  type ConfigurationResult,
  type Fig4Result,
  type Fig7Result,
  type PretrainResult,
  type ProtocolSummary,
  type RunResult,
} from "../experiments/results.ts";

export interface ReportFiles {
  html: string;
  markdown: string;
}

const STYLE =
  `body{font:14px/1.45 system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}td.best{font-weight:bold;background:#eef6ee}.note{color:#666;font-size:12px}
.held{color:#176b1c;font-weight:bold}.failed{color:#a11;font-weight:bold}.inconclusive,.not-judged{color:#777}.grid img{image-rendering:pixelated;width:128px;margin:1px}
table.claims td,table.claims th{text-align:left}figure{margin:1em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.check{border-left:4px solid #c90;padding:.3em .6em;background:#fff8e6}`;

function pngTag(bytes: Uint8Array, alt: string): string {
  return `<img alt="${escapeHtml(alt)}" src="data:image/png;base64,${encodeBase64(bytes)}">`;
}

export async function writeReport(
  outDir: string,
  summary: ProtocolSummary,
  results: RunResult[],
): Promise<ReportFiles> {
  const configs = results.filter((r): r is ConfigurationResult => r.kind === "configuration");
  const pretrain = results.filter((r): r is PretrainResult => r.kind === "pretrain");
  const fig4 = results.find((r): r is Fig4Result => r.kind === "fig4") ?? null;
  const fig7 = results.filter((r): r is Fig7Result => r.kind === "fig7");
  const classes = summary.classes;

  const tables: Table[] = [
    ...(fig4 ? [samplerTable(fig4)] : []),
    ...(pretrain.length ? [pretrainTable(pretrain)] : []),
    ...classes.map((c) => reconstructionTable(c, configs.filter((r) => r.className === c))),
    ...classes.map((c) => detectionTable(c, configs.filter((r) => r.className === c))),
    rankingTable(classes, configs),
    speedTable(configs),
  ];
  const claims = checkClaims(classes, configs, pretrain, fig4);
  const check = trainingCheck(classes.map((c) => classCheck(c, configs)));

  const charts: Chart[] = [
    ...(configs.length ? [learningCurves(configs)] : []),
    ...(fig4 ? [samplerHistograms(fig4)] : []),
    ...(fig7.length ? [lossVersusAngle(fig7)] : []),
    ...(pretrain.length ? [pretrainCurves(pretrain)] : []),
  ];
  await Deno.mkdir(`${outDir}/charts`, { recursive: true });
  const svgs: string[] = [];
  for (const chart of charts) {
    const svg = await renderSvg(chart.spec);
    await Deno.writeTextFile(`${outDir}/charts/${chart.name}.vl.json`, JSON.stringify(chart.spec, null, 1));
    await Deno.writeTextFile(`${outDir}/charts/${chart.name}.svg`, svg);
    svgs.push(`<figure><figcaption>${escapeHtml(chart.title)}</figcaption>${svg}</figure>`);
  }

  const runFile = (id: string, name: string) => Deno.readFile(`${outDir}/runs/${id}/${name}`);
  const grids: string[] = [];
  if (fig4) {
    const images = [pngTag(await runFile(fig4.id, fig4.input), "input")];
    for (const s of fig4.samplers) {
      images.push(pngTag(await runFile(fig4.id, s.differenceImage), `${s.sampler} difference`));
    }
    grids.push(
      `<h3>Fig. 4: input, then |difference| ×8 after the round trip with the exact and the naive sampler</h3><div class="grid">${
        images.join("")
      }</div>`,
    );
  }
  for (const r of configs) {
    if (!r.exampleGrid) continue;
    grids.push(
      `<h4>${escapeHtml(r.className)}, ${
        escapeHtml(CONFIGURATION_LABELS[r.configuration])
      }, seed ${r.seed}</h4><div class="grid">${
        pngTag(await runFile(r.id, r.exampleGrid), `${r.id} examples`)
      }</div>`,
    );
  }

  const claimRows = claims.map((c) =>
    `<tr><td>${escapeHtml(c.section)}</td><td>${escapeHtml(c.claim)}</td><td class="${
      c.verdict.replace(" ", "-")
    }">${c.verdict}</td><td>${escapeHtml(c.evidence)}</td><td>${escapeHtml(c.spread)}</td></tr>`
  ).join("\n");
  const settings = escapeHtml(JSON.stringify(summary.settings, null, 1));
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Orientation-normalised autoencoders: reproduction report</title><style>${STYLE}</style></head><body>
<h1>Rádli &amp; Czúni (2022), reproduced</h1>
<p>Preset <b>${escapeHtml(summary.preset)}</b> on <b>${escapeHtml(summary.device)}</b>; classes ${
    escapeHtml(classes.join(", "))
  };
seeds ${escapeHtml(summary.seeds.join(", "))}; started ${escapeHtml(summary.startedAt)}; wall time ${
    (summary.wallSeconds / 60).toFixed(1)
  } min.
Cells are mean ± sample standard deviation over seeds; the best of a row is in bold.</p>
<p class="check">${escapeHtml(check)}</p>
<h2>The paper's claims in this run</h2>
<p class="note">${escapeHtml(SEED_RULE)}</p>
<table class="claims"><thead><tr><th>where</th><th>claim</th><th>verdict</th><th>evidence (this run, means over seeds)</th><th>paired difference and seed spread</th></tr></thead><tbody>
${claimRows}
</tbody></table>
<h2>Tables</h2>
${tables.map(toHtml).join("\n")}
<h2>Figures</h2>
${svgs.join("\n")}
<h2>Examples</h2>
<p class="note">Each row of a grid: input, orientation-normalised input, reconstruction (inverse-transformed), residual map, ground truth.</p>
${grids.join("\n")}
<h2>Settings</h2><pre>${settings}</pre>
</body></html>`;

  const markdown = [
    `${check}\n`,
    `## Claims\n`,
    `${SEED_RULE}\n`,
    markdownRow(["where", "claim", "verdict", "evidence", "paired difference and seed spread"]),
    markdownRow(["---", "---", "---", "---", "---"]),
    ...claims.map((c) => markdownRow([c.section, c.claim, c.verdict, c.evidence, c.spread])),
    "",
    ...tables.map(toMarkdown),
  ].join("\n");
  await Deno.writeTextFile(`${outDir}/report.html`, html);
  await Deno.writeTextFile(`${outDir}/tables.md`, markdown);
  await Deno.writeTextFile(`${outDir}/metrics.json`, JSON.stringify({ summary, results, claims }, null, 1));
  return { html: `${outDir}/report.html`, markdown };
}
