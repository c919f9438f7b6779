/**
 * Imports run one way, down this list. A unit is a top-level folder or a file at the repository root:
 *
 *   engine → webgpu | wasm | … → backends.ts → data → models → train → eval → detect → experiments
 *          → report → cli → mod.ts | bench | scripts → tests
 *
 * The backend folders are whatever `backends.ts` imports, so a new device is its folder and one line
 * there, and this list follows.
 *
 * - A unit imports only from units on lower layers (or from itself). Units on one layer do not import each
 *   other: the backends are independent of each other, and so are mod.ts, the benchmarks and scripts.
 * - The library between the device list and the entry points (data … report) names no device: it takes a
 *   `Backend`. Only `backends.ts`, `cli/` and the top layer import a backend folder or `backends.ts`.
 * - No two files import each other, directly or around a loop, except the device contract: a `Tensor`
 *   holds its `Backend` and a `Backend`'s kernels take and return tensors (`engine/backend.ts` and
 *   `engine/tensor.ts`, type-only in one direction).
 *
 * The order is what the code does, in the order of STYLE.md (data, model, training, evaluation,
 * report): data needs only the engine's PRNG; models only the engine; training needs data and models;
 * the evaluation needs only the engine (SSIM maps), and sits above training so that training never reads
 * the metrics; inference on whole images (detect) uses data, models and the evaluation's residuals; the
 * experiments run training, evaluation and detection; the report reads the experiments' results; the
 * command-line entry points run it all.
 * docs/engine.md repeats this list.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));

function unitOf(file: string): string {
  return file.split("/")[0];
}

/** The backend folders: every folder `backends.ts` imports. */
const BACKENDS = importsOf("backends.ts", Deno.readTextFileSync(join(ROOT, "backends.ts"))).map(unitOf);

export const LAYERS: readonly (readonly string[])[] = [
  ["engine"],
  BACKENDS,
  ["backends.ts"],
  ["data"],
  ["models"],
  ["train"],
  ["eval"],
  ["detect"],
  ["experiments"],
  ["report"],
  ["cli"],
  ["mod.ts", "bench", "scripts"],
  ["tests"],
];
/** Backend folders and the list that imports them. */
const DEVICE_UNITS = new Set([...BACKENDS, "backends.ts"]);
/** The only units allowed to import a device unit (besides backends.ts, which lists them). */
const NAMES_DEVICES = new Set(["backends.ts", "cli", "mod.ts", "bench", "scripts", "tests"]);
/** File pairs allowed to import each other (see the module comment). */
const CONTRACT_CYCLE = ["engine/backend.ts", "engine/tensor.ts"];
const SKIPPED = new Set(["runs", "node_modules", "fixtures"]);

/** Every .ts file under the repository, relative to it, except run outputs, caches and fixtures. */
export function sourceFiles(dir = ROOT): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && !entry.name.startsWith(".") && !SKIPPED.has(entry.name)) {
      files.push(...sourceFiles(path));
    } else if (entry.isFile && entry.name.endsWith(".ts")) files.push(relative(ROOT, path));
  }
  return files.sort();
}

/**
 * The repository files a source file imports (static, side-effect, re-export and dynamic imports with a
 * relative specifier). Statements are matched at the start of a line, so code in comments is not read.
 */
export function importsOf(file: string, source: string): string[] {
  const patterns = [
    /^(?:import|export)\b[^;]*?\bfrom\s*"(\.[^"]+)"/gms,
    /^import\s*"(\.[^"]+)"/gm,
    /\bimport\(\s*"(\.[^"]+)"\s*\)/g,
  ];
  return patterns.flatMap((p) => [...source.matchAll(p)].map((m) => normalize(join(dirname(file), m[1]))));
}

const layerOf = new Map(LAYERS.flatMap((units, i) => units.map((u) => [u, i] as const)));

const graph = new Map(sourceFiles().map((f) => [f, importsOf(f, Deno.readTextFileSync(join(ROOT, f)))]));

Deno.test("layers: every file belongs to a layer", () => {
  const unplaced = [...new Set([...graph.keys()].map(unitOf).filter((u) => !layerOf.has(u)))];
  assert.deepEqual(
    unplaced,
    [],
    `add these to LAYERS in tests/layers_test.ts and docs/engine.md: ${unplaced}`,
  );
});

Deno.test("layers: imports run down the layer list", () => {
  const upward: string[] = [];
  for (const [file, imports] of graph) {
    const from = unitOf(file);
    for (const target of imports) {
      const to = unitOf(target);
      if (to === from) continue;
      const [a, b] = [layerOf.get(from), layerOf.get(to)];
      if (a === undefined || b === undefined) continue; // reported by the test above
      if (b >= a) {
        upward.push(`${file} imports ${target}: ${to} is ${b > a ? "above" : "on the layer of"} ${from}`);
      }
      if (DEVICE_UNITS.has(to) && !NAMES_DEVICES.has(from)) {
        upward.push(`${file} imports ${target}: only entry points choose a device; take a Backend instead`);
      }
    }
  }
  assert.deepEqual(upward, [], `imports against the layer list:\n  ${upward.join("\n  ")}`);
});

Deno.test("layers: every import names a file that exists", () => {
  const missing = [...graph].flatMap(([file, imports]) =>
    imports.filter((t) => !graph.has(t) && !SKIPPED.has(t.split("/")[1])).map((t) => `${file} imports ${t}`)
  );
  assert.deepEqual(
    missing,
    [],
    `the import scan misread these (or they are broken):\n  ${missing.join("\n  ")}`,
  );
});

Deno.test("layers: no file imports itself around a loop, except the device contract", () => {
  // Tarjan's strongly connected components over the file graph.
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), loops: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) loops.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  assert.deepEqual(loops.filter((l) => l.join() !== CONTRACT_CYCLE.join()), [], "import loops between files");
});

Deno.test("layers: the scan sees a planted upward import", () => {
  const planted = importsOf(
    "data/x.ts",
    'import type { A } from "../b.ts";\nimport {\n  c,\n} from "../report/html.ts";\n/** import { d } from "../cli/x.ts"; */\nimport "../webgpu/webgpu.ts";\n',
  );
  assert.deepEqual(planted, ["b.ts", "report/html.ts", "webgpu/webgpu.ts"]);
});
