/**
 * `deno task reproduce`: the paper's protocol end to end, then the report. See `--help`.
 */
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { DeviceName } from "../engine/backend.ts";
import "../backends.ts";
import { deviceNames, openDevice, parseThreads, setDeviceOptions } from "../engine/device.ts";
import { SYNTHETIC_CLASSES, syntheticClass, type SyntheticClassName } from "../data/synthetic/classes.ts";
import { openValidatedClassFolder } from "../data/validate_folder.ts";
import { type ClassSet, withDefects } from "../data/class_set.ts";
import { writeReport } from "../report/html.ts";
import { callerPath } from "./caller_path.ts";
import { formatDuration } from "../train/progress.ts";
import { writeFileAtomic } from "../engine/atomic_write.ts";
import { presetNamed, PRESETS } from "../experiments/presets.ts";
import {
  DataOfClass,
  executeRun,
  planRuns,
  type ProtocolContext,
  readResult,
  type RunSpec,
} from "../experiments/protocol.ts";
import type { ProtocolSummary, RunResult } from "../experiments/results.ts";

const HELP = `deno task reproduce [options]

Runs the protocol of Radli & Czuni (2022) and writes report.html, tables.md and metrics.json.

Options:
  --preset NAME    ${Object.keys(PRESETS).join(" | ")} (default: default)
  --data DIR       an MVTec AD-layout class folder to use instead of the embedded classes (repeatable)
  --classes LIST   comma-separated subset of the classes (default: all)
  --defects LIST   evaluate only these defect types (and test/good), e.g. thread_top for the MVTec screw as
                   the paper does; every class run must have each of them (default: every type)
  --seeds LIST     comma-separated seeds (default: the preset's)
  --device NAME    auto (default: the fastest device here) or ${deviceNames().join(", ")}
  --threads N      threads for a CPU-side device (default: every core, ${navigator.hardwareConcurrency} here)
  --out DIR        output folder (default: runs/<timestamp>)
  --resume         continue an interrupted reproduce in --out, skipping finished runs
  --plan           print the protocol as one command per run, and exit
  --only RUN_ID    run only that run, into --out (for job arrays; see --plan)
  --collect DIR    build the report from the runs in DIR; refuses while runs are missing
  --partial        with --collect: report the finished runs even though others are missing
  --help           this text

Every --data folder is validated (every image decoded) before any work; --only validates its run's class.
Two --data folders with the same name (A/screw, B/screw) become classes A-screw and B-screw. Relative
paths are taken from the folder the command runs in.

Examples:
  deno task reproduce                                   # the default preset, about 45 minutes on 2 cores
  deno task reproduce --preset smoke --out runs/smoke   # the whole pipeline in a few minutes; numbers mean nothing
  deno task reproduce --data ~/mvtec/screw --data ~/mvtec/carpet --seeds 1,2,3
  deno task reproduce --data ~/mvtec/screw --defects thread_top    # the paper's screw protocol
  deno task reproduce --preset paper --out runs/paper --plan > plan.txt   # then run each line anywhere
  deno task reproduce --collect runs/paper
`;

class UsageError extends Error {}

/** Where the default output folder (runs/) lives. */
const PROJECT_ROOT = new URL("..", import.meta.url).pathname;

interface Options {
  preset: string;
  data: string[];
  classes: string[] | null;
  defects: string[] | null;
  seeds: number[] | null;
  device: DeviceName;
  threads: number | undefined;
  out: string | null;
  resume: boolean;
  plan: boolean;
  only: string | null;
  collect: string | null;
  partial: boolean;
}

function parseOptions(args: string[]): Options | null {
  try {
    return optionsOf(args);
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError(`${(e as Error).message} (see --help)`);
  }
}

function optionsOf(args: string[]): Options | null {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      preset: { type: "string", default: "default" },
      data: { type: "string", multiple: true, default: [] },
      classes: { type: "string" },
      defects: { type: "string" },
      seeds: { type: "string" },
      device: { type: "string", default: "auto" },
      threads: { type: "string" },
      out: { type: "string" },
      resume: { type: "boolean", default: false },
      plan: { type: "boolean", default: false },
      only: { type: "string" },
      collect: { type: "string" },
      partial: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return null;
  const seeds = values.seeds?.split(",").map((s) => {
    if (!/^\d+$/.test(s.trim())) {
      throw new UsageError(`--seeds ${values.seeds}: "${s}" is not a whole number`);
    }
    return Number(s);
  });
  if (values.device !== "auto" && !deviceNames().includes(values.device!)) {
    throw new UsageError(`--device ${values.device}: expected auto, ${deviceNames().join(", ")}`);
  }
  if ((values.only || values.resume) && !values.out) {
    throw new UsageError("--only and --resume need --out DIR");
  }
  if (values.partial && !values.collect) throw new UsageError("--partial goes with --collect DIR");
  return {
    preset: values.preset!,
    data: values.data!.map((d) => resolve(callerPath(d))),
    classes: values.classes?.split(",").map((s) => s.trim()) ?? null,
    defects: values.defects?.split(",").map((s) => s.trim()).filter((s) => s) ?? null,
    seeds: seeds ?? null,
    device: values.device!,
    threads: parseThreads(values.threads),
    out: values.out === undefined ? null : resolve(callerPath(values.out)),
    resume: values.resume!,
    plan: values.plan!,
    only: values.only ?? null,
    collect: values.collect === undefined ? null : callerPath(values.collect),
    partial: values.partial!,
  };
}

/**
 * A class id per --data folder: the folder's name, or, where two share a name (A/screw and B/screw), the
 * parent's name joined to it (A-screw, B-screw). Ids that still collide are refused.
 */
export function classIds(dirs: string[]): Map<string, string> {
  const name = (dir: string) => basename(dir);
  const qualified = (dir: string) => `${basename(dirname(dir))}-${name(dir)}`;
  const clash = (dir: string) => dirs.filter((other) => name(other) === name(dir)).length > 1;
  const ids = new Map<string, string>();
  for (const dir of dirs) {
    const id = clash(dir) ? qualified(dir) : name(dir);
    if (ids.has(id)) {
      throw new UsageError(
        `--data ${ids.get(id)} and ${dir} would both be class ${id}: ` +
          `rename one of the folders (the class takes its folder's name)`,
      );
    }
    ids.set(id, dir);
  }
  return ids;
}

/**
 * The classes to run: the embedded ones, or the --data folders. `validate` checks the named folders in full
 * (every image decoded), all of them before it throws, so one error names every class's problems.
 */
function classSources(o: Options, synthetic: ProtocolContext["preset"]["synthetic"]) {
  const sources = new Map<string, () => Promise<ClassSet>>();
  const validated = new Map<string, ClassSet>();
  const ids = classIds(o.data);
  for (const [id, dir] of ids) {
    if (basename(dir) !== id) console.error(`reproduce: --data ${dir} is class ${id} (another has its name)`);
    sources.set(id, () => Promise.resolve(validated.get(id)!));
  }
  if (!o.data.length) {
    for (const name of SYNTHETIC_CLASSES) {
      const set = () => syntheticClass(name, synthetic);
      sources.set(name, () => Promise.resolve(o.defects ? withDefects(set(), o.defects) : set()));
    }
  }
  const names = o.classes ?? [...sources.keys()];
  for (const name of names) {
    if (!sources.has(name)) {
      throw new UsageError(`--classes: no class "${name}"; have ${[...sources.keys()].join(", ")}`);
    }
  }
  const validate = async (classes: readonly string[]) => {
    const failures = [];
    for (const id of classes) {
      const dir = ids.get(id);
      if (!dir) {
        if (o.defects) withDefectsOrUsage(syntheticClass(id as SyntheticClassName, synthetic), o.defects);
        continue;
      }
      if (validated.has(id)) continue;
      try {
        const set = await openValidatedClassFolder(dir, (line) => console.error(`class ${id}: ${line}`));
        validated.set(id, o.defects ? withDefects({ ...set, name: id }, o.defects) : { ...set, name: id });
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
    if (failures.length > 0) throw new Error(failures.join("\n"));
  };
  return { names, validate, open: (name: string) => sources.get(name)!() };
}

/** A word as the shell reads it: as it is when that is safe, otherwise in single quotes. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function withDefectsOrUsage(set: ClassSet, defects: string[]): ClassSet {
  try {
    return withDefects(set, defects);
  } catch (e) {
    throw new UsageError(`--defects ${defects.join(",")}: ${(e as Error).message}`);
  }
}

function planCommands(o: Options, out: string, runs: RunSpec[]): string[] {
  const flags = [
    "--preset",
    o.preset,
    ...o.data.flatMap((d) => ["--data", d]),
    ...(o.classes ? ["--classes", o.classes.join(",")] : []),
    ...(o.defects ? ["--defects", o.defects.join(",")] : []),
    ...(o.seeds ? ["--seeds", o.seeds.join(",")] : []),
    "--device",
    o.device,
    "--out",
    out,
  ].map(shellQuote).join(" ");
  const line = (r: RunSpec) => `deno task reproduce ${flags} --only ${shellQuote(r.id)}`;
  return [
    "# stage 1: independent runs",
    ...runs.filter((r) => r.needs.length === 0).map(line),
    "# stage 2: each needs its class's pre-training run from stage 1",
    ...runs.filter((r) => r.needs.length > 0).map(line),
    `# then: deno task reproduce --collect ${shellQuote(out)}`,
  ];
}

async function collectResults(out: string): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for await (const entry of Deno.readDir(join(out, "runs"))) {
    if (!entry.isDirectory) continue;
    const r = await readResult(out, entry.name);
    if (r) results.push(r);
  }
  return results.sort((a, b) => a.id.localeCompare(b.id));
}

/** Writes the report of the finished runs in `out`; its wall time is the sum of the runs' own times. */
async function report(out: string, summary: ProtocolSummary, partial = false): Promise<void> {
  const results = await collectResults(out);
  const finished = new Set(results.map((r) => r.id));
  const planned = planRuns(summary.classes, summary.seeds);
  const missing = planned.filter((r) => !finished.has(r.id)).map((r) => r.id);
  if (missing.length > 0) {
    const listed = missing.slice(0, 10).join(", ") + (missing.length > 10 ? ", ..." : "");
    const what = `${missing.length} of ${planned.length} runs have not finished in ${out}: ${listed}`;
    if (!partial) {
      throw new Error(
        `${what}. Run them (--resume, or --only RUN_ID as --plan prints), or pass --partial to report the rest`,
      );
    }
    console.error(`reproduce: warning: ${what}; the report leaves them out`);
  }
  const wallSeconds = results.reduce((s, r) => s + r.seconds, 0);
  const files = await writeReport(out, { ...summary, wallSeconds }, results);
  console.log(files.markdown);
  console.log(`report: ${files.html}`);
}

async function readSummary(out: string): Promise<ProtocolSummary | null> {
  try {
    return JSON.parse(await Deno.readTextFile(join(out, "protocol.json"))) as ProtocolSummary;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

async function main(args: string[]): Promise<void> {
  const o = parseOptions(args);
  if (!o) return console.log(HELP);
  if (o.collect) {
    const summary = await readSummary(o.collect);
    if (!summary) throw new UsageError(`${o.collect} has no protocol.json: is it a reproduce output folder?`);
    return report(o.collect, summary, o.partial);
  }
  const preset = presetNamed(o.preset);
  const seeds = o.seeds ?? preset.seeds;
  const classes = classSources(o, preset.synthetic);
  const out = o.out ?? join(PROJECT_ROOT, "runs", new Date().toISOString().replace(/[:.]/g, "-"));
  const runs = planRuns(classes.names, seeds);
  const selected = o.only ? runs.filter((r) => r.id === o.only) : runs;
  if (o.only && selected.length === 0) throw new UsageError(`--only ${o.only}: no such run; see --plan`);
  // Before anything is written: every class this invocation will read, validated in full.
  await classes.validate([...new Set(selected.map((r) => r.className))]);
  if (o.plan) return console.log(planCommands(o, out, runs).join("\n"));

  setDeviceOptions({ threads: o.threads });
  const device = await openDevice(o.device);
  const summary: ProtocolSummary = {
    preset: preset.name,
    device: device.name,
    classes: classes.names,
    seeds,
    startedAt: new Date().toISOString(),
    wallSeconds: 0,
    settings: { ...preset, data: o.data, ...(o.defects ? { defects: o.defects } : {}) },
  };
  const existing = await readSummary(out);
  if (existing && !o.resume && !o.only) {
    throw new UsageError(
      `${out} already holds a reproduce run: pass --resume to continue it, or another --out`,
    );
  }
  if (existing && JSON.stringify(existing.settings) !== JSON.stringify(summary.settings)) {
    throw new UsageError(
      `${out} was made with other settings (${join(out, "protocol.json")}); use another --out`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  if (!existing) await writeFileAtomic(join(out, "protocol.json"), JSON.stringify(summary, null, 1));
  console.error(
    `reproduce: preset ${preset.name} on ${device.name}, ${runs.length} runs, writing to ${out}`,
  );

  const ctx: ProtocolContext = {
    out,
    preset,
    device,
    resume: o.resume || o.only !== null,
    openClass: classes.open,
  };
  const data = new DataOfClass(ctx);
  const started = performance.now();
  for (const [k, spec] of selected.entries()) {
    const label = `[${k + 1}/${selected.length}] ${spec.id}`;
    if (await readResult(out, spec.id)) {
      console.error(`${label}: finished earlier, skipped`);
      continue;
    }
    console.error(`${label} ...`);
    const result = await executeRun(spec, ctx, data);
    console.error(`${label}: done in ${formatDuration(result.seconds)}`);
  }
  if (o.only) return;
  await report(out, existing ?? summary);
  console.error(`reproduce: finished in ${formatDuration((performance.now() - started) / 1000)}`);
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`reproduce: ${(e as Error).message}`);
    if (!(e instanceof UsageError) && Deno.env.get("DEBUG")) console.error(e);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
