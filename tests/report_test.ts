import assert from "node:assert/strict";
import { writeReport } from "../report/html.ts";
import { checkClaims, trainingCheck } from "../report/claims.ts";
import { rankingTable, reconstructionTable, summarise, toMarkdown } from "../report/tables.ts";
import {
  type Configuration,
  type ConfigurationResult,
  CONFIGURATIONS,
  type DetectionFigures,
  type PretrainResult,
  type ProtocolSummary,
} from "../experiments/results.ts";
import { createImage } from "../data/image.ts";
import { encodePng } from "../data/image_file.ts";

const figures = (v: number): DetectionFigures => ({
  rocAuc: v,
  averagePrecision: v / 2,
  iouAuc: v / 5,
  aupro: v / 3,
  imageAuroc: null,
  f1: v / 4,
  f1Threshold: 0.5,
  undefinedReasons: ["images: only defective images"],
});

/** Results where configuration k scores (k + 1) / 10 better than the plain AE, per seed. */
function results(): ConfigurationResult[] {
  return ["texture1", "screw"].flatMap((className) =>
    CONFIGURATIONS.flatMap((configuration: Configuration, k) =>
      [1, 2].map((seed) => ({
        kind: "configuration" as const,
        seconds: 60,
        id: `${className}-${configuration}-s${seed}`,
        className,
        configuration,
        seed,
        curve: [{ epoch: 1, step: 10, trainLoss: 0.1 - k / 100, valLoss: 0.11 - k / 100 }, {
          epoch: 2,
          step: 20,
          trainLoss: 0.05,
          valLoss: 0.06,
        }],
        mse255: 80 - k - seed,
        ssim: 0.8 + k / 100,
        detection: { ssim: figures(0.8 + k / 50), l2: figures(0.6 + k / 50) },
        imagesPerSecond: 20,
        trainSeconds: 60,
        exampleGrid: null,
      }))
    )
  );
}

const pretrain: PretrainResult[] = [{
  kind: "pretrain",
  seconds: 30,
  id: "pretrain-screw-s1",
  className: "screw",
  seed: 1,
  lr: 1e-3,
  steps: 100,
  before: { circularStdDegrees: 50, meanResultantLength: 0.1, meanDegrees: 10 },
  after: { circularStdDegrees: 9, meanResultantLength: 0.9, meanDegrees: 80 },
  curve: [{ epoch: 1, step: 100, trainLoss: 0.2, valLoss: 0.2 }],
  weights: "stn.safetensors",
}];

Deno.test("summarise gives mean ± sample std, and n/a without values", () => {
  assert.equal(summarise([1, 3]).text, "2.0000 ± 1.4142");
  assert.equal(summarise([0.5]).text, "0.5000");
  assert.equal(summarise([null, null]).text, "n/a");
  assert.equal(summarise([1, null]).text, "1.0000 ± 0.0000 (1/2 seeds)");
});

Deno.test("reconstruction table marks the lowest MSE and the highest SSIM", () => {
  const t = reconstructionTable("texture1", results().filter((r) => r.className === "texture1"));
  const md = toMarkdown(t);
  assert.match(md, /\*\*75\.50 ± 0\.71\*\*/); // stn-finetuned: 80 - 3 - {1, 2}
  assert.match(md, /\*\*0\.8300 ± 0\.0000\*\*/);
  assert.ok(!md.includes("NaN"));
});

Deno.test("ranking table counts places over the six paper metrics", () => {
  const t = rankingTable(["screw"], results());
  const first = t.rows[0].slice(2).map((c) => c.text);
  assert.deepEqual(first, ["0", "0", "0", "6"]); // the last configuration wins every metric here
  assert.equal(t.rows.length, 4);
});

Deno.test("claims are judged from the figures", () => {
  const claims = checkClaims(["screw"], results(), pretrain, null);
  const frozen = claims.find((c) => c.claim.startsWith("pre-trained frozen STN has lower MSE"))!;
  assert.equal(frozen.held, true);
  assert.equal(frozen.evidence, "77.5 vs 78.5");
  const spread = claims.find((c) => c.section === "Section 6")!;
  assert.equal(spread.held, true);
  const random = claims.find((c) => c.claim.startsWith("a randomly initialised STN"))!;
  assert.equal(random.held, false); // here the random STN does improve the MSE
  const tied = results().map((r) => ({ ...r, mse255: 70 }));
  const tie = checkClaims(["screw"], tied, [], null).find((c) =>
    c.claim.startsWith("pre-trained frozen STN has lower")
  )!;
  assert.equal(tie.held, false);
  assert.equal(tie.evidence, "70.0 vs 70.0 (a tie)");
});

Deno.test("the training check names the classes whose plain AE is below the SSIM floor", () => {
  const rs = results().map((r) => (r.className === "texture1" ? { ...r, ssim: 0.14 } : r));
  const check = trainingCheck(["texture1", "screw"], rs);
  assert.match(check, /texture1 0\.14, screw 0\.80\. Below 0\.5 \(texture1\) it reproduces/);
  assert.match(trainingCheck(["screw"], rs), /Every class is above 0\.5\.$/);
  assert.match(trainingCheck(["texture2"], rs), /not trained/);
});

Deno.test("writeReport writes a self-contained page, tables, metrics and every chart", async () => {
  const out = await Deno.makeTempDir();
  const grid = createImage(3, 8, 40);
  await Deno.mkdir(`${out}/runs/screw-ae-s1`, { recursive: true });
  await Deno.writeFile(`${out}/runs/screw-ae-s1/examples.png`, encodePng(grid));
  const rs = results().map((r) => (r.id === "screw-ae-s1" ? { ...r, exampleGrid: "examples.png" } : r));
  const summary: ProtocolSummary = {
    preset: "test",
    device: "cpu",
    classes: ["texture1", "screw"],
    seeds: [1, 2],
    startedAt: "2026-01-01T00:00:00Z",
    wallSeconds: 90,
    settings: { samples: 10 },
  };
  const files = await writeReport(out, summary, [...rs, ...pretrain]);
  const html = await Deno.readTextFile(files.html);
  assert.match(html, /Training check: the plain AE's mean SSIM/);
  assert.match(files.markdown, /^Training check: /);
  assert.ok(!/NaN|undefined/.test(html.replace(/base64,[A-Za-z0-9+/=]+/g, "")));
  assert.ok(!/(src|href)="https?:/.test(html), "the page loads nothing from the network");
  assert.equal((html.match(/<svg/g) ?? []).length >= 2, true);
  assert.match(html, /data:image\/png;base64,/);
  for (
    const title of ["Reconstruction quality, texture1", "Defect detection, screw", "Rankings", "pre-training"]
  ) {
    assert.ok(html.includes(title), title);
  }
  const charts = [...Deno.readDirSync(`${out}/charts`)].map((e) => e.name).sort();
  assert.deepEqual(charts, [
    "fig3_learning_curves.svg",
    "fig3_learning_curves.vl.json",
    "stn_pretraining.svg",
    "stn_pretraining.vl.json",
  ]);
  const metrics = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
  assert.equal(metrics.results.length, rs.length + 1);
  await Deno.remove(out, { recursive: true });
});
