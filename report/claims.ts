/**
 * The paper's findings, each judged against this run with the figures that decided it, and the training
 * check that says on which classes a comparison means anything.
 *
 * Training check. A class is learned when, on every seed, the plain AE's MSE on the held-out defect-free
 * patches is at most LEARNED_FRACTION of the average image's (the per-pixel mean of the training patches,
 * experiments/evaluate.ts averageImageBaseline) and its mean SSIM is at least SSIM_FLOOR. The SSIM floor
 * alone lets the average image pass on an object on a uniform background (the screw: SSIM 0.68 at the
 * average image's MSE); the MSE fraction does not.
 *
 * Seed rule. A comparison "a beats b" is judged over the seeds both were run with: per seed the difference
 * d_s, signed so that d_s > 0 supports the claim; its mean m and sample standard deviation s over the n
 * seeds. The claim holds when m > s, fails when m < -s, and is inconclusive otherwise (and always with one
 * seed, which has no spread). With 3 seeds, m > s is a paired t of √3 ≈ 1.7: a difference larger than the
 * seeds' own disagreement, not a significance test. A claim on a class the AE has not learned is not judged.
 */
import type {
  Configuration,
  ConfigurationResult,
  Fig4Result,
  PretrainResult,
} from "../experiments/results.ts";
import { spreadText, summarise } from "./tables.ts";

/** The seed rule in one paragraph, for the report. */
export const SEED_RULE = "How a claim is judged: per seed, the difference between the two figures it " +
  "compares, signed so that a positive difference supports it. The claim holds when the mean difference " +
  "exceeds the seeds' standard deviation of that difference, fails when it is below minus that deviation, " +
  "and is inconclusive otherwise (always with a single seed). Claims on a class the plain AE has not " +
  "learned (see the training check) are not judged.";

export type Verdict = "held" | "failed" | "inconclusive" | "not judged";

export interface Claim {
  section: string;
  claim: string;
  verdict: Verdict;
  /** The figures compared (means over seeds). */
  evidence: string;
  /** The paired difference and its spread over seeds, or why there is none. */
  spread: string;
}

type Pick = (r: ConfigurationResult) => number | null;

const fmt = (v: number) => (Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(4));
const signed = (v: number) => (v >= 0 ? "+" : "−") + fmt(Math.abs(v));

/** The plain AE's MSE as a fraction of the average image's, at most this on every seed: learned. */
export const LEARNED_FRACTION = 0.5;
/** The plain AE's mean SSIM, at least this on every seed: the check's second signal. */
export const SSIM_FLOOR = 0.5;

export interface PairedDifference {
  verdict: "held" | "failed" | "inconclusive";
  mean: number;
  /** Sample standard deviation of the per-seed differences (0 for one seed). */
  std: number;
  seeds: number;
}

/** The seed rule (module comment) on per-seed differences, each signed so that > 0 supports the claim. */
export function pairedVerdict(differences: number[]): PairedDifference {
  const { mean, std } = summariseDifferences(differences);
  const seeds = differences.length;
  const verdict = seeds < 2 ? "inconclusive" : mean > std ? "held" : mean < -std ? "failed" : "inconclusive";
  return { verdict, mean, std, seeds };
}

function summariseDifferences(values: number[]): { mean: number; std: number } {
  if (values.length === 0) return { mean: NaN, std: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const squares = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { mean, std: values.length > 1 ? Math.sqrt(squares / (values.length - 1)) : 0 };
}

/** "difference +6.1, seed sd 2.3 (3 seeds)", in the claim's direction. */
function spreadOf(p: PairedDifference): string {
  return p.seeds > 1
    ? `difference ${signed(p.mean)}, seed sd ${fmt(p.std)} (${p.seeds} seeds)`
    : "difference " + signed(p.mean) + ", one seed: no spread to judge it against";
}

/** Per seed run with both: pick(a) and pick(b), where both are defined. */
function pairs(
  results: ConfigurationResult[],
  className: string,
  a: { config: Configuration; pick: Pick },
  b: { config: Configuration; pick: Pick },
): [number, number][] {
  const of = (config: Configuration) =>
    new Map(
      results.filter((r) => r.className === className && r.configuration === config).map((r) => [r.seed, r]),
    );
  const ra = of(a.config), rb = of(b.config);
  return [...ra.keys()].sort((x, y) => x - y).flatMap((seed) => {
    const rbs = rb.get(seed);
    const va = a.pick(ra.get(seed)!), vb = rbs ? b.pick(rbs) : null;
    return va !== null && vb !== null && Number.isFinite(va) && Number.isFinite(vb) ? [[va, vb]] : [];
  });
}

/** The training check of one class, from its plain-AE runs. */
export interface ClassCheck {
  className: string;
  /** Seeds of the plain AE with a baseline. */
  seeds: number;
  /** Mean over seeds of the AE's MSE over the average image's, and the largest. */
  mseFraction: number | null;
  worstFraction: number | null;
  ssim: number | null;
  worstSsim: number | null;
  /** The average image's own mean SSIM on the same patches (how much the SSIM floor says on this class). */
  averageImageSsim: number | null;
  learned: boolean;
}

export function classCheck(className: string, results: ConfigurationResult[]): ClassCheck {
  const ae = results.filter((r) => r.className === className && r.configuration === "ae");
  const measured = ae.filter((r) => r.averageImage && r.averageImage.mse255 > 0);
  const fractions = measured.map((r) => r.mse255 / r.averageImage!.mse255);
  const ssims = measured.map((r) => r.ssim);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  return {
    className,
    seeds: measured.length,
    mseFraction: mean(fractions),
    worstFraction: fractions.length ? Math.max(...fractions) : null,
    ssim: mean(ssims),
    worstSsim: ssims.length ? Math.min(...ssims) : null,
    averageImageSsim: mean(measured.map((r) => r.averageImage!.ssim)),
    learned: measured.length > 0 && fractions.every((f) => f <= LEARNED_FRACTION) &&
      ssims.every((s) => s >= SSIM_FLOOR),
  };
}

/** One paragraph: each class's MSE fraction and SSIM, which ones count as learned, and what that means. */
export function trainingCheck(checks: ClassCheck[]): string {
  const measured = checks.filter((c) => c.seeds > 0);
  const rule = `MSE at most ${LEARNED_FRACTION} of the average image's and SSIM at least ${SSIM_FLOOR}, ` +
    `on every seed`;
  if (measured.length === 0) {
    return "Training check: the plain AE was not trained in this run (or its results predate the " +
      "average-image baseline), so no class counts as learned and no comparison is judged.";
  }
  const list = measured.map((c) =>
    `${c.className} ${c.mseFraction!.toFixed(2)}${
      c.seeds > 1 ? ` (worst ${c.worstFraction!.toFixed(2)})` : ""
    }, ` +
    `SSIM ${c.ssim!.toFixed(2)} (the average image's ${c.averageImageSsim!.toFixed(2)})`
  ).join("; ");
  const unlearned = checks.filter((c) => !c.learned).map((c) => c.className);
  return `Training check: the plain AE's MSE on held-out defect-free patches as a fraction of the average ` +
    `training image's, and its mean SSIM: ${list}. ` +
    (unlearned.length
      ? `Not learned (${rule}): ${unlearned.join(", ")}; ${
        unlearned.length === 1 ? "its" : "their"
      } comparisons are not judged: train longer.`
      : `Every class is learned (${rule}).`);
}

/** "a beats b" on one class and figure, over seeds; lower or higher is better. */
function compare(
  section: string,
  claim: string,
  results: ConfigurationResult[],
  className: string,
  learned: boolean,
  [a, b]: [Configuration, Configuration],
  pick: Pick,
  better: "lower" | "higher",
): Claim {
  return judge(
    section,
    claim,
    learned,
    pairs(results, className, { config: a, pick }, { config: b, pick }),
    better,
  );
}

/** The seed rule on pairs [a, b] where the claim says a is `better`. */
function judge(
  section: string,
  claim: string,
  learned: boolean,
  paired: [number, number][],
  better: "lower" | "higher",
): Claim {
  if (paired.length === 0) {
    return { section, claim, verdict: "not judged", evidence: "not measured in this run", spread: "" };
  }
  const va = summariseDifferences(paired.map(([a]) => a)).mean;
  const vb = summariseDifferences(paired.map(([, b]) => b)).mean;
  const p = pairedVerdict(paired.map(([a, b]) => (better === "lower" ? b - a : a - b)));
  return {
    section,
    claim,
    verdict: learned ? p.verdict : "not judged",
    evidence: `${fmt(va)} vs ${fmt(vb)}${learned ? "" : " (the plain AE has not learned this class)"}`,
    spread: spreadOf(p),
  };
}

export function checkClaims(
  classes: string[],
  results: ConfigurationResult[],
  pretrain: PretrainResult[],
  fig4: Fig4Result | null,
): Claim[] {
  const claims: Claim[] = [];
  const learned = new Map(classes.map((c) => [c, classCheck(c, results).learned]));
  if (fig4) {
    const exact = fig4.samplers.find((s) => s.sampler === "exact"),
      naive = fig4.samplers.find((s) => s.sampler === "naive");
    if (exact && naive) {
      claims.push({
        section: "Fig. 4",
        claim:
          `the TensorFlow STN sampler leaves a larger ${fig4.angle}° round-trip error than an exact sampler`,
        verdict: naive.meanError255 > exact.meanError255 ? "held" : "failed",
        evidence: `mean |error| ${exact.meanError255.toFixed(2)} (exact) vs ${
          naive.meanError255.toFixed(2)
        } (naive) grey levels`,
        spread: "deterministic: no seed",
      });
    }
  }
  for (const c of classes) {
    const rs = pretrain.filter((p) => p.className === c).sort((x, y) => x.seed - y.seed);
    if (!rs.length) continue;
    // A resultant length that rises by less than 0.05 is noise, not normalisation: the margin of the rule.
    const margin = 0.05;
    const p = pairedVerdict(
      rs.map((r) => r.after.meanResultantLength - r.before.meanResultantLength - margin),
    );
    const before = summarise(rs.map((r) => r.before.meanResultantLength)).mean!;
    const after = summarise(rs.map((r) => r.after.meanResultantLength)).mean!;
    claims.push({
      section: "Section 6",
      claim: `pre-training normalises the orientation of ${c} (the orientations concentrate)`,
      verdict: p.verdict,
      evidence: `resultant length ${before.toFixed(2)} before, ${after.toFixed(2)} after (circular std in ` +
        `degrees: ${rs.map((r) => `${spreadText(r.before)} → ${spreadText(r.after)}`).join(", ")})`,
      spread: p.seeds > 1
        ? `rise ${fmt(p.mean + margin)} (margin ${margin}), seed sd ${fmt(p.std)} (${p.seeds} seeds)`
        : `rise ${fmt(p.mean + margin)}, one seed: no spread to judge it against`,
    });
  }
  const mse: Pick = (r) => r.mse255, ssim: Pick = (r) => r.ssim;
  const roc: Pick = (r) => r.detection.ssim.rocAuc, pr: Pick = (r) => r.detection.ssim.averagePrecision;
  for (const c of classes) {
    const s = "Tables 3-5", l = learned.get(c)!;
    claims.push(
      compare(
        s,
        `pre-trained frozen STN has lower MSE than the plain AE on ${c}`,
        results,
        c,
        l,
        [
          "stn-frozen",
          "ae",
        ],
        mse,
        "lower",
      ),
      compare(
        s,
        `pre-trained frozen STN has higher SSIM than the plain AE on ${c}`,
        results,
        c,
        l,
        [
          "stn-frozen",
          "ae",
        ],
        ssim,
        "higher",
      ),
      // The paper: "could not improve reconstruction quality, in all cases we got worse results".
      compare(
        s,
        `a randomly initialised STN gives a higher (worse) MSE than the plain AE on ${c}`,
        results,
        c,
        l,
        [
          "stn-random",
          "ae",
        ],
        mse,
        "higher",
      ),
    );
  }
  claims.push(finetuneClaim(classes, results, learned));
  for (const c of classes) {
    const s = "Tables 6-8", l = learned.get(c)!;
    claims.push(
      compare(
        s,
        `frozen STN has a higher SSIM-residual ROC AUC than the plain AE on ${c}`,
        results,
        c,
        l,
        [
          "stn-frozen",
          "ae",
        ],
        roc,
        "higher",
      ),
      compare(
        s,
        `frozen STN has a higher SSIM-residual PR AUC than the plain AE on ${c}`,
        results,
        c,
        l,
        [
          "stn-frozen",
          "ae",
        ],
        pr,
        "higher",
      ),
      judge(
        "Section 8.2",
        `the SSIM residual detects defects better than the L2 residual (plain AE, ROC AUC) on ${c}`,
        l,
        pairs(results, c, { config: "ae", pick: roc }, { config: "ae", pick: (r) => r.detection.l2.rocAuc }),
        "higher",
      ),
    );
  }
  return claims;
}

/**
 * Section 8.1: fine-tuning is worse than freezing (higher MSE) in most classes. Each learned class is judged
 * by the seed rule; the claim holds when more than half of them hold, fails when half or more fail (most
 * can no longer hold), and is inconclusive otherwise.
 */
function finetuneClaim(
  classes: string[],
  results: ConfigurationResult[],
  learned: Map<string, boolean>,
): Claim {
  const section = "Section 8.1";
  const claim =
    "fine-tuning the pre-trained STN gives lower quality (MSE) than freezing it in most classes (paper: 2 of 3)";
  const mse: Pick = (r) => r.mse255;
  const judged = classes.filter((c) => learned.get(c)).map((c) => ({
    c,
    p: pairedVerdict(
      pairs(results, c, { config: "stn-finetuned", pick: mse }, { config: "stn-frozen", pick: mse }).map((
        [f, z],
      ) => f - z),
    ),
  })).filter(({ p }) => p.seeds > 0);
  const skipped = classes.length - judged.length;
  if (judged.length === 0) {
    return {
      section,
      claim,
      verdict: "not judged",
      evidence: "no learned class has both configurations",
      spread: "",
    };
  }
  const held = judged.filter(({ p }) => p.verdict === "held").length;
  const failed = judged.filter(({ p }) => p.verdict === "failed").length;
  const n = judged.length;
  return {
    section,
    claim,
    verdict: held > n / 2 ? "held" : failed >= n / 2 ? "failed" : "inconclusive",
    evidence: `fine-tuned worse in ${held} of ${n} learned classes, better in ${failed}, inconclusive in ${
      n - held - failed
    }${skipped ? `; ${skipped} not judged` : ""}`,
    spread: `MSE difference, seed sd: ${
      judged.map(({ c, p }) => `${c} ${signed(p.mean)}, ${fmt(p.std)} (${p.seeds} seeds)`).join("; ")
    }`,
  };
}
