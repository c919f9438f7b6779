import assert from "node:assert/strict";
import { writeReport } from "../report/html.ts";
import { checkClaims, classCheck, pairedVerdict, trainingCheck } from "../report/claims.ts";
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
        averageImage: { mse255: 200, ssim: 0.3 },
        detection: { ssim: figures(0.8 + k / 50), l2: figures(0.6 + k / 50) },
        imagesPerSecond: 20,
        trainSeconds: 60,
        exampleGrid: null,
      }))
    )
  );
}

const pretrain: PretrainResult[] = [1, 2].map((seed) => ({
  kind: "pretrain",
  seconds: 30,
  id: `pretrain-screw-s${seed}`,
  className: "screw",
  seed,
  lr: 1e-3,
  steps: 100,
  before: { circularStdDegrees: 50, meanResultantLength: 0.1, meanDegrees: 10 },
  after: { circularStdDegrees: 9, meanResultantLength: 0.9 - seed / 100, meanDegrees: 80 },
  curve: [{ epoch: 1, step: 100, trainLoss: 0.2, valLoss: 0.2 }],
  weights: "stn.safetensors",
}));

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

Deno.test("the seed rule: held when the mean paired difference exceeds its seed sd, failed when below minus it", () => {
  assert.deepEqual(pairedVerdict([2, 3, 4]), { verdict: "held", mean: 3, std: 1, seeds: 3 });
  assert.equal(pairedVerdict([-2, -3, -4]).verdict, "failed");
  assert.equal(pairedVerdict([3, -2]).verdict, "inconclusive"); // mean 0.5, sd 3.5
  assert.equal(pairedVerdict([0, 0, 0]).verdict, "inconclusive"); // a tie
  assert.equal(pairedVerdict([1, 1]).verdict, "held"); // no spread at all
  assert.equal(pairedVerdict([5]).verdict, "inconclusive"); // one seed has no spread to judge against
});

Deno.test("claims are judged over seeds, paired by seed, with the spread shown", () => {
  const claims = checkClaims(["screw"], results(), pretrain, null);
  const frozen = claims.find((c) => c.claim.startsWith("pre-trained frozen STN has lower MSE"))!;
  assert.equal(frozen.verdict, "held");
  assert.equal(frozen.evidence, "77.5 vs 78.5");
  assert.equal(frozen.spread, "difference +1.0000, seed sd 0.0000 (2 seeds)");
  const spread = claims.find((c) => c.section === "Section 6")!;
  assert.equal(spread.verdict, "held");
  assert.match(spread.spread, /rise 0\.7850 \(margin 0\.05\), seed sd 0\.0071 \(2 seeds\)/);
  const random = claims.find((c) => c.claim.startsWith("a randomly initialised STN"))!;
  assert.equal(random.verdict, "failed"); // here the random STN does improve the MSE
  const finetune = claims.find((c) => c.section === "Section 8.1")!;
  assert.equal(finetune.verdict, "failed"); // fine-tuned beats frozen by 2 on every seed
  assert.match(finetune.evidence, /fine-tuned worse in 0 of 1 learned classes, better in 1/);

  const tied = results().map((r) => ({ ...r, mse255: 70 }));
  const tie = checkClaims(["screw"], tied, [], null).find((c) =>
    c.claim.startsWith("pre-trained frozen STN has lower")
  )!;
  assert.equal(tie.verdict, "inconclusive");
  assert.equal(tie.evidence, "70.0 vs 70.0");
  // Frozen better by 3 on seed 1 and worse by 2 on seed 2: a mean of 0.5 against a spread of 3.5.
  const noisy = results().map((r) =>
    r.configuration === "stn-frozen" ? { ...r, mse255: r.seed === 1 ? 76 : 80 } : r
  );
  const judged = checkClaims(["screw"], noisy, [], null).find((c) =>
    c.claim.startsWith("pre-trained frozen STN has lower")
  )!;
  assert.equal(judged.verdict, "inconclusive");
  assert.equal(judged.spread, "difference +0.5000, seed sd 3.5355 (2 seeds)");
  const single = checkClaims(["screw"], results().filter((r) => r.seed === 1), pretrain.slice(0, 1), null);
  assert.ok(single.every((c) => c.verdict === "inconclusive"), "one seed judges nothing");
});

Deno.test("claims on a class the plain AE has not learned are not judged", () => {
  // The AE's MSE is 0.79 of the average image's: the average-image plateau, whatever its SSIM.
  const plateau = results().map((r) => ({ ...r, averageImage: { mse255: 100, ssim: 0.7 } }));
  const claims = checkClaims(["screw"], plateau, pretrain, null);
  const comparisons = claims.filter((c) => c.section !== "Section 6");
  assert.ok(comparisons.every((c) => c.verdict === "not judged"), JSON.stringify(comparisons));
  assert.match(comparisons[0].evidence, /the plain AE has not learned this class/);
  assert.equal(claims.find((c) => c.section === "Section 6")!.verdict, "held", "pre-training is judged");
  // Below the SSIM floor on one seed, the class is not learned either.
  const dim = results().map((r) => (r.configuration === "ae" && r.seed === 2 ? { ...r, ssim: 0.45 } : r));
  assert.equal(classCheck("screw", dim).learned, false);
  assert.equal(classCheck("screw", results()).learned, true);
});

Deno.test("the training check gives each class's MSE fraction and SSIM and names the unlearned ones", () => {
  const rs = results().map((r) =>
    r.className === "texture1" ? { ...r, ssim: 0.14, averageImage: { mse255: 80, ssim: 0.13 } } : r
  );
  const check = trainingCheck(["texture1", "screw"].map((c) => classCheck(c, rs)));
  assert.match(
    check,
    /texture1 0\.98 \(worst 0\.99\), SSIM 0\.14 \(the average image's 0\.13\); screw 0\.39 \(worst 0\.40\), SSIM 0\.80/,
  );
  assert.match(
    check,
    /Not learned \(MSE at most 0\.5 of the average image's and SSIM at least 0\.5, on every seed\): texture1; its comparisons are not judged/,
  );
  assert.match(trainingCheck([classCheck("screw", rs)]), /Every class is learned/);
  assert.match(trainingCheck([classCheck("texture2", rs)]), /not trained/);
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
  assert.match(html, /Training check: the plain AE&#39;s MSE|Training check: the plain AE's MSE/);
  assert.match(html, /How a claim is judged/);
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
  assert.equal(metrics.results.length, rs.length + pretrain.length);
  await Deno.remove(out, { recursive: true });
});
