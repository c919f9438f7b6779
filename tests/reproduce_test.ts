/**
 * `deno task reproduce --preset smoke` end to end (the whole protocol, tiny), then what a user does
 * with its output: --collect, --resume, --plan and --only. The numbers of a smoke run mean nothing;
 * the test checks that every table, claim and chart is there and that nothing is NaN.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { TEST_DEVICES } from "./devices.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function reproduce(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", join(ROOT, "cli/reproduce.ts"), ...args],
    cwd: ROOT,
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** The fastest device the suite runs on: WebGPU where it is available. */
const device = TEST_DEVICES.some((d) => d.name === "webgpu" && !d.ignore) ? "webgpu" : "cpu";

Deno.test({
  name:
    `reproduce --preset smoke on ${device}: every table, claim and chart, no NaN; then --collect and --resume`,
  sanitizeResources: false,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "smoke-" });
    const run = await reproduce("--preset", "smoke", "--device", device, "--out", out);
    assert.equal(run.code, 0, run.stderr);
    const tables = await Deno.readTextFile(join(out, "tables.md"));
    assert.equal(run.stdout.includes(tables.slice(0, 200)), true, "the tables are printed at the end");
    for (const c of ["texture1", "texture2", "screw"]) {
      assert.ok(tables.includes(`Reconstruction quality, ${c}`), c);
      assert.ok(tables.includes(`Defect detection, ${c}`), c);
    }
    for (
      const title of [
        "Rotate by 45°",
        "STN orientation pre-training",
        "Rankings",
        "Training speed",
        "## Claims",
      ]
    ) {
      assert.ok(tables.includes(title), title);
    }
    // Every row of a Markdown table has as many cells as its header (a bare `|` in a cell would split it).
    for (const block of tables.split("\n\n")) {
      const rows = block.split("\n").filter((line) => line.startsWith("|"));
      const widths = rows.map((row) => row.split(/(?<!\\)\|/).length);
      assert.ok(widths.every((w) => w === widths[0]), block);
    }
    const html = await Deno.readTextFile(join(out, "report.html"));
    const text = html.replace(/base64,[A-Za-z0-9+/=]+/g, ""); // inline images may spell anything
    assert.ok(!/NaN|undefined|Infinity/.test(text + tables));
    const charts = [...Deno.readDirSync(join(out, "charts"))].map((e) => e.name).sort();
    for (
      const name of [
        "fig3_learning_curves",
        "fig4_sampler_histograms",
        "fig7_loss_vs_angle",
        "stn_pretraining",
      ]
    ) {
      assert.ok(charts.includes(`${name}.svg`) && charts.includes(`${name}.vl.json`), name);
    }
    assert.equal((html.match(/<svg/g) ?? []).length >= 4, true);
    assert.equal((html.match(/data:image\/png/g) ?? []).length, 3 + 12, "Fig. 4 images and one grid per run");
    const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
    assert.equal(metrics.results.length, 1 + 3 + 3 + 12);

    const collected = await reproduce("--collect", out);
    assert.equal(collected.code, 0, collected.stderr);
    assert.equal(await Deno.readTextFile(join(out, "tables.md")), tables);

    const resumed = await reproduce("--preset", "smoke", "--device", device, "--out", out, "--resume");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((resumed.stderr.match(/finished earlier, skipped/g) ?? []).length, 19);

    const again = await reproduce("--preset", "smoke", "--device", device, "--out", out);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a reproduce run: pass --resume/);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test("reproduce --plan prints one command per run, in two stages; --only runs one", async () => {
  const out = await Deno.makeTempDir({ prefix: "plan-" });
  const plan = await reproduce(
    "--preset",
    "smoke",
    "--classes",
    "screw",
    "--seeds",
    "3",
    "--out",
    out,
    "--plan",
  );
  assert.equal(plan.code, 0, plan.stderr);
  const commands = plan.stdout.trim().split("\n").filter((l) => !l.startsWith("#"));
  assert.deepEqual(commands.map((c) => c.split("--only ")[1]), [
    "fig4",
    "fig7-screw",
    "pretrain-screw-s3",
    "screw-ae-s3",
    "screw-stn-random-s3",
    "screw-stn-frozen-s3",
    "screw-stn-finetuned-s3",
  ]);
  assert.match(plan.stdout, /# stage 2: each needs/);
  const early = await reproduce(...commands[5].split(" ").slice(3));
  assert.equal(early.code, 1);
  assert.match(early.stderr, /needs run pretrain-screw-s3, which has not finished/);
  const one = await reproduce(...commands[0].split(" ").slice(3));
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual([...Deno.readDirSync(join(out, "runs"))].map((e) => e.name), ["fig4"]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("reproduce --defects: carried into every planned command, each name checked against the class", async () => {
  const plan = await reproduce("--classes", "screw", "--defects", "thread_top", "--out", "x", "--plan");
  assert.equal(plan.code, 0, plan.stderr);
  const commands = plan.stdout.trim().split("\n").filter((l) => !l.startsWith("#"));
  assert.ok(commands.every((c) => c.includes("--defects thread_top")), plan.stdout);
  const wrong = await reproduce("--classes", "screw", "--defects", "crack", "--plan");
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--defects crack: class screw has no defect type "crack"; it has scratch/);
});

Deno.test("reproduce refuses bad options and unusable data before any work", async () => {
  const bad = await reproduce("--preset", "huge");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown preset "huge", expected one of smoke, default, paper/);
  const seeds = await reproduce("--seeds", "1,x", "--plan");
  assert.equal(seeds.code, 2);
  assert.match(seeds.stderr, /--seeds 1,x: "x" is not a whole number/);
  const unknown = await reproduce("--colour");
  assert.equal(unknown.code, 2);
  const folder = await reproduce("--data", join(ROOT, "tests/fixtures/mvtec-leather/train"), "--plan");
  assert.equal(folder.code, 1);
  assert.match(folder.stderr, /cannot be used/);
});
