import assert from "node:assert/strict";
import { Random } from "../engine/random.ts";
import { GOOD, withDefects } from "../data/class_set.ts";
import { loadClassFolder } from "../data/mvtec_folder.ts";
import {
  renderSample,
  SYNTHETIC_CLASSES,
  syntheticClass,
  type SyntheticOptions,
} from "../data/synthetic/classes.ts";
import { brushed, type Texture, twillRib } from "../data/synthetic/textures.ts";
import { resize } from "../data/transform.ts";
import { validateClassFolder } from "../data/validate_folder.ts";
import { writeClassFolder } from "../data/write_folder.ts";

// Small images keep the suite fast; the generators scale their features with the size.
const SMALL: SyntheticOptions = { seed: 7, size: 128, trainGood: 3, testGood: 2, defective: 8 };

Deno.test("every class is deterministic per seed and differs between seeds", () => {
  for (const name of SYNTHETIC_CLASSES) {
    const a = renderSample(name, SMALL, "test/scratch/000.png", "scratch");
    const b = renderSample(name, SMALL, "test/scratch/000.png", "scratch");
    const c = renderSample(name, { ...SMALL, seed: 8 }, "test/scratch/000.png", "scratch");
    assert.deepEqual(a.image.data, b.image.data);
    assert.deepEqual(a.mask, b.mask);
    assert.notDeepEqual(a.image.data, c.image.data);
  }
});

Deno.test("each defect changes exactly its masked pixels of the same sample's defect-free render", () => {
  for (const name of SYNTHETIC_CLASSES) {
    const set = syntheticClass(name, SMALL);
    const defective = set.test.filter((sample) => sample.defect !== GOOD);
    assert.ok(defective.length > 0);
    for (const sample of defective) {
      const withDefect = renderSample(name, SMALL, sample.name, sample.defect);
      const withoutDefect = renderSample(name, SMALL, sample.name).image;
      let altered = 0;
      for (let i = 0; i < withDefect.mask.length; i++) {
        const changed = withDefect.image.data[i] !== withoutDefect.data[i];
        assert.equal(withDefect.mask[i], changed ? 1 : 0, `${name} ${sample.name} pixel ${i}`);
        altered += changed ? 1 : 0;
      }
      assert.ok(altered > 0, `${name} ${sample.name}: the defect changed nothing`);
    }
  }
});

Deno.test("good samples have empty masks; counts and defect types follow the options", async () => {
  for (const name of SYNTHETIC_CLASSES) {
    const set = syntheticClass(name, SMALL);
    assert.equal(set.train.length, 3);
    assert.equal(set.test.filter((s) => s.defect === GOOD).length, 2);
    const defects = set.test.filter((s) => s.defect !== GOOD).map((s) => s.defect);
    assert.equal(defects.length, 8);
    // Spread evenly: no type has more than one sample more than another.
    const perType = Object.values(Object.groupBy(defects, (d) => d)).map((list) => list!.length);
    assert.ok(Math.max(...perType) - Math.min(...perType) <= 1, `${name}: ${perType}`);
    for (const sample of [...set.train, ...set.test.filter((s) => s.defect === GOOD)]) {
      const { image, mask } = await sample.read(1);
      assert.ok(mask.every((v) => v === 0), `${name} ${sample.name} has defect pixels`);
      assert.ok(image.data.every((v) => v >= 0 && v <= 1));
    }
  }
});

/** Angle of the dominant gradient from the structure tensor, and its coherence (1: one direction only). */
function dominantGradient(texture: Texture): { angle: number; coherence: number } {
  const { size, pixels } = texture;
  let xx = 0, xy = 0, yy = 0;
  for (let y = 1; y < size - 1; y++) {
    for (let x = 1; x < size - 1; x++) {
      const gx = (pixels[y * size + x + 1] - pixels[y * size + x - 1]) / 2;
      const gy = (pixels[(y + 1) * size + x] - pixels[(y - 1) * size + x]) / 2;
      xx += gx * gx;
      xy += gx * gy;
      yy += gy * gy;
    }
  }
  return { angle: 0.5 * Math.atan2(2 * xy, xx - yy), coherence: Math.hypot(xx - yy, 2 * xy) / (xx + yy) };
}

Deno.test("both textures have one dominant direction, at the random angle they report", () => {
  for (const make of [twillRib, brushed]) {
    for (let seed = 0; seed < 3; seed++) {
      const texture = make(new Random(seed), 512);
      // Measured at the scale of Eq. 7, which the STN minimises on a 64x64 copy of a prepared patch (a 512
      // image ends about 5.7x smaller): the fine threads and streaks, low in contrast but steep, would
      // otherwise outweigh the broad ribs in the gradients, and central differences err more with frequency.
      const seen = resize({ channels: 1, height: 512, width: 512, data: texture.pixels }, 64, 64);
      const { angle, coherence } = dominantGradient({ ...texture, size: 64, pixels: seen.data });
      // Gradients run across the stripes: 90 degrees from the stripe direction, modulo 180.
      const offset = (((angle - texture.direction - Math.PI / 2) % Math.PI) + 1.5 * Math.PI) % Math.PI -
        Math.PI / 2;
      // 20 seeds measured: offsets within 0.7 degrees; coherence at least 0.84 (texture1, whose thread
      // segments cross the ribs) and 0.97 (texture2).
      assert.ok(
        Math.abs(offset) < (3 * Math.PI) / 180,
        `${make.name} seed ${seed}: ${(offset * 180) / Math.PI} degrees off`,
      );
      assert.ok(coherence > 0.8, `${make.name} seed ${seed}: coherence ${coherence}`);
    }
  }
});

Deno.test("make-data's writer produces an MVTec folder that validates and loads back the same masks", async () => {
  const options = { ...SMALL, trainGood: 2, testGood: 1, defective: 3 };
  const set = syntheticClass("screw", options);
  const root = await Deno.makeTempDir({ prefix: "screw-" });
  await writeClassFolder(set, root);
  const report = await validateClassFolder(root);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.warnings, []);
  assert.deepEqual(report.summary.sizes, { "128x128": 6 });
  const loaded = await loadClassFolder(root);
  for (const [i, sample] of loaded.test.entries()) {
    const original = set.test.find((s) => s.name === sample.name)!;
    const [a, b] = await Promise.all([sample.read(1), original.read(1)]);
    assert.deepEqual(a.mask, b.mask, `test sample ${i}`);
    assert.deepEqual(a.image.data, b.image.data, `test sample ${i}`);
  }
});

Deno.test("withDefects keeps test/good and the named defect types, and names the types a class has", () => {
  const screw = syntheticClass("screw", SMALL);
  const threadTop = withDefects(screw, ["thread_top"]);
  const kinds = (set: typeof screw) => [...new Set(set.test.map((s) => s.defect))];
  assert.deepEqual(kinds(threadTop), [GOOD, "thread_top"]);
  assert.equal(threadTop.train.length, screw.train.length);
  assert.notEqual(threadTop.fingerprint, screw.fingerprint, "the patch cache keeps the sets apart");
  assert.throws(
    () => withDefects(screw, ["thread_top", "crack"]),
    /class screw has no defect type "crack"; it has scratch, thread_side, thread_top/,
  );
});
