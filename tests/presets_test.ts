/**
 * The presets: what the default promises (3 seeds, the screw trained longer), and that a class's own epoch
 * count reaches its training run.
 */
import assert from "node:assert/strict";
import { DataOfClass, executeRun, planRuns, type ProtocolContext } from "../experiments/protocol.ts";
import { epochsOf, type Preset, PRESETS } from "../experiments/presets.ts";
import type { ConfigurationResult } from "../experiments/results.ts";
import { syntheticClass } from "../data/synthetic/classes.ts";
import { TEST_DEVICES } from "./devices.ts";

Deno.test("the default preset judges claims over 3 seeds and trains the screw 4 epochs, the textures 1", () => {
  const p = PRESETS.default;
  assert.ok(p.seeds.length >= 3, `${p.seeds.length} seeds`);
  assert.deepEqual(["texture1", "texture2", "screw"].map((c) => epochsOf(p, c)), [1, 1, 4]);
  // A class with no entry (a user's folder) gets the preset's epochs.
  assert.equal(epochsOf(p, "leather"), 1);
});

const wasm = TEST_DEVICES.find((d) => d.name === "wasm")!;
Deno.test({
  name: "a class's own epoch count reaches its configuration run, and only that class's",
  ignore: wasm.ignore,
  fn: async () => {
    const preset: Preset = { ...PRESETS.smoke, classEpochs: { texture2: 2 } };
    const out = await Deno.makeTempDir({ prefix: "presets_test_" });
    try {
      const ctx: ProtocolContext = {
        out,
        preset,
        device: await wasm.get(),
        resume: false,
        openClass: (name) =>
          Promise.resolve(syntheticClass(name as "texture1" | "texture2", preset.synthetic)),
      };
      const data = new DataOfClass(ctx);
      const epochs = new Map<string, number>();
      for (const spec of planRuns(["texture1", "texture2"], [1]).filter((s) => s.configuration === "ae")) {
        const result = (await executeRun(spec, ctx, data)) as ConfigurationResult;
        epochs.set(spec.className, Math.max(...result.curve.map((p) => p.epoch)));
      }
      assert.deepEqual(Object.fromEntries(epochs), { texture1: 1, texture2: 2 });
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
