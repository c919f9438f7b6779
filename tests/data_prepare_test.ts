import assert from "node:assert/strict";
import { join } from "node:path";
import type { ClassSample, ClassSet, LabelledImage } from "../data/class_set.ts";
import { createImage, type Image } from "../data/image.ts";
import {
  type Geometry,
  PAPER_GEOMETRY,
  preparePatch,
  prepareTestSet,
  prepareTrainingSets,
} from "../data/prepare.ts";
import { rotate } from "../data/transform.ts";

/** A smooth, strictly positive gray image (values in [0.2, 0.8]) of any shape. */
function smooth(width: number, height: number, phase: number): Image {
  const image = createImage(1, height, width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      image.data[y * width + x] = 0.5 +
        0.3 * Math.sin((2 * Math.PI * x) / 70 + phase) * Math.cos((2 * Math.PI * y) / 90);
    }
  }
  return image;
}

function inMemoryClass(train: Image[], test: LabelledImage[] = [], fingerprint = "test class"): ClassSet {
  const sample = (name: string, split: "train" | "test", item: LabelledImage): ClassSample => ({
    name,
    split,
    defect: item.mask.some((v) => v === 1) ? "crack" : "good",
    read: () => Promise.resolve(item),
  });
  return {
    name: "memory",
    channels: 1,
    fingerprint,
    train: train.map((image, i) =>
      sample(`train/good/${i}.png`, "train", { image, mask: new Uint8Array(image.width * image.height) })
    ),
    test: test.map((item, i) => sample(`test/x/${i}.png`, "test", item)),
  };
}

// Non-square sources, as magnetic-tile has: resized to 256x256 like everything else.
const TRAIN = [smooth(300, 200, 0), smooth(256, 256, 1), smooth(180, 260, 2)];

Deno.test("training and validation sets have the documented shapes, an 80/20 split and angles in range", async () => {
  const { train, validation } = await prepareTrainingSets(inMemoryClass(TRAIN), {
    samples: 50,
    seed: 3,
    angleRange: [10, 20],
    cacheDir: null,
  });
  for (const [set, n] of [[train, 40], [validation, 10]] as const) {
    assert.deepEqual([set.n, set.channels, set.size], [n, 1, 128]);
    assert.equal(set.images.length, n * 128 * 128);
    assert.equal(set.content.length, n * 128 * 128);
    assert.ok(set.angles.every((a) => a >= 10 && a < 20));
    assert.equal(set.defects, undefined);
  }
  const rgb = await prepareTrainingSets(inMemoryClass(TRAIN), {
    samples: 4,
    seed: 3,
    channels: 3,
    cacheDir: null,
  });
  assert.equal(rgb.train.images.length, 3 * 3 * 128 * 128);
});

Deno.test("impossible training options are refused with the value and what was expected", async () => {
  const prepare = (set: ClassSet, samples: number, validationFraction = 0.2) =>
    prepareTrainingSets(set, { samples, seed: 0, validationFraction, cacheDir: null });
  await assert.rejects(
    prepare(inMemoryClass([]), 10),
    /class memory has no training images \(train\/good is empty\)/,
  );
  await assert.rejects(
    prepare(inMemoryClass(TRAIN), 0),
    /samples is 0, expected a whole number of at least 1/,
  );
  await assert.rejects(
    prepare(inMemoryClass(TRAIN), 10, 1),
    /validationFraction is 1, expected a fraction in \[0, 1\)/,
  );
});

Deno.test("the content mask is where the non-zero content lies, up to the 2-pixel blur of its edge", async () => {
  const { train } = await prepareTrainingSets(inMemoryClass(TRAIN), { samples: 10, seed: 5, cacheDir: null });
  const size = 128, plane = size * size;
  for (let n = 0; n < train.n; n++) {
    const content = train.content.subarray(n * plane, (n + 1) * plane);
    const image = train.images.subarray(n * plane, (n + 1) * plane);
    for (let i = 0; i < plane; i++) {
      const x = i % size, y = Math.floor(i / size);
      if (content[i] === 1) assert.ok(image[i] > 0, `patch ${n} pixel (${x}, ${y}) is content but zero`);
      if (content[i] === 1 || image[i] === 0) continue;
      // Non-zero outside the mask: only next to the mask's edge, where resampling spreads the content.
      let nearEdge = false;
      for (let dy = -2; dy <= 2; dy++) {
        for (let dx = -2; dx <= 2; dx++) {
          if (
            content[Math.min(size - 1, Math.max(0, y + dy)) * size + Math.min(size - 1, Math.max(0, x + dx))]
          ) nearEdge = true;
        }
      }
      assert.ok(nearEdge, `patch ${n} pixel (${x}, ${y}) is non-zero ${image[i]} far from the content mask`);
    }
  }
});

Deno.test("a fixed seed gives the same bytes, another seed different ones", async () => {
  const make = (seed: number) =>
    prepareTrainingSets(inMemoryClass(TRAIN), { samples: 6, seed, cacheDir: null });
  const [a, b, c] = await Promise.all([make(11), make(11), make(12)]);
  assert.deepEqual(a.train.images, b.train.images);
  assert.deepEqual(a.train.angles, b.train.angles);
  assert.deepEqual(a.validation.content, b.validation.content);
  assert.notDeepEqual(a.train.angles, c.train.angles);
});

Deno.test("rotating a training patch by minus its recorded angle undoes the augmentation", async () => {
  // Sources of exactly one patch: every crop is the whole image, so patches differ only by their angle.
  const geometry: Geometry = { ...PAPER_GEOMETRY, resized: 128 };
  const source = smooth(128, 128, 0.5);
  const { train } = await prepareTrainingSets(inMemoryClass([source]), {
    samples: 5,
    seed: 1,
    geometry,
    cacheDir: null,
  });
  const upright = preparePatch(source, 0, 0, 0, geometry);
  const plane = 128 * 128;
  for (let n = 0; n < train.n; n++) {
    const patch = {
      channels: 1,
      height: 128,
      width: 128,
      data: train.images.slice(n * plane, (n + 1) * plane),
    };
    const back = rotate(patch, -train.angles[n]);
    let total = 0, count = 0;
    for (let i = 0; i < plane; i++) {
      const x = i % 128 - 63.5, y = Math.floor(i / 128) - 63.5;
      // Inside the content's inscribed disc, 3 px from its edge: no padding is mixed in.
      if (Math.hypot(x, y) > 128 * (128 / 181) / 2 - 3) continue;
      total += Math.abs(back.data[i] - upright.data[i]);
      count++;
    }
    // Interpolation only: the rotations' bilinear sampling and the 181 -> 128 resize, on a wave of 70-90 px
    // period, leave a mean error of about 0.0005 (measured); a wrong angle or sign leaves about 0.2.
    assert.ok(total / count < 0.001, `patch ${n} at ${train.angles[n]} degrees: mean error ${total / count}`);
  }
});

Deno.test("test patches: four per image, unrotated, defect masks carried identically and binarised", async () => {
  const size = 512;
  const mask = new Uint8Array(size * size);
  for (let y = 0; y < size / 2; y++) mask.fill(1, y * size, y * size + size / 2); // the top-left quarter
  const test = await prepareTestSet(
    inMemoryClass([], [{ image: smooth(size, size, 0), mask }, {
      image: smooth(300, 200, 1),
      mask: new Uint8Array(60000),
    }]),
    { cacheDir: null },
  );
  assert.equal(test.n, 8);
  assert.deepEqual(Array.from(test.imageIndex!), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.ok(test.angles.every((a) => a === 0));
  const plane = 128 * 128;
  const count = (array: Uint8Array, n: number) =>
    array.subarray(n * plane, (n + 1) * plane).reduce((s, v) => s + v, 0);
  // The top-left patch is all defect wherever it has content; the edge may lose one row and one column to blur.
  const content = count(test.content, 0), defects = count(test.defects!, 0);
  assert.ok(
    defects <= content && content - defects <= 2 * 91,
    `content ${content}, defect pixels ${defects}`,
  );
  for (let n = 1; n < 8; n++) assert.equal(count(test.defects!, n), 0, `patch ${n} has defect pixels`);
  // Every test patch has the same content square: 128 scaled by 128/181 is about 91 px a side.
  for (let n = 0; n < 8; n++) assert.ok(Math.abs(count(test.content, n) - 91 * 91) <= 2 * 91);
});

Deno.test("prepared sets are cached by parameters and source, and a corrupt entry is rebuilt", async () => {
  const dir = await Deno.makeTempDir({ prefix: "patch-cache-" });
  const set = inMemoryClass(TRAIN);
  let reads = 0;
  const counted: ClassSet = {
    ...set,
    train: set.train.map((s) => ({ ...s, read: (c: 1 | 3) => (reads++, s.read(c)) })),
  };
  const options = { samples: 8, seed: 2, cacheDir: dir };
  const first = await prepareTrainingSets(counted, options);
  assert.equal(reads, 3);
  const second = await prepareTrainingSets(counted, options);
  assert.equal(reads, 3, "the second run read the sources again");
  assert.deepEqual(second.train.images, first.train.images);
  assert.deepEqual(second.validation.angles, first.validation.angles);
  await prepareTrainingSets({ ...counted, fingerprint: "changed" }, options);
  assert.equal(reads, 6, "a changed source reused the old entry");
  const entries = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.equal(entries.length, 2);
  assert.ok(entries.every((name) => /^patches-[0-9a-f]{32}\.bin$/.test(name)), `stray files: ${entries}`);
  // A run killed mid-write leaves no entry under the final name; simulate a damaged one anyway.
  for (const name of entries) {
    const path = join(dir, name);
    await Deno.writeFile(path, (await Deno.readFile(path)).subarray(0, 1000));
  }
  const rebuilt = await prepareTrainingSets(counted, options);
  assert.deepEqual(rebuilt.train.images, first.train.images);
  assert.equal(reads, 9);
});
