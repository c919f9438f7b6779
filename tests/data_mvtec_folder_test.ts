import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { encode as encodeRawPng } from "fast-png";
import jpeg from "jpeg-js";
import { createImage, type Image } from "../data/image.ts";
import { encodePng } from "../data/image_file.ts";
import { loadClassFolder, scanClassFolder } from "../data/mvtec_folder.ts";
import { openValidatedClassFolder, validateClassFolder } from "../data/validate_folder.ts";

const SHARED = new URL("../../shared/data/", import.meta.url).pathname;

function gray(width: number, height: number, value = 0.5): Image {
  const image = createImage(1, height, width);
  image.data.fill(value);
  return image;
}

/** A mask image: 1 inside the given rows, 0 elsewhere. */
function maskPng(width: number, height: number, rows: number[] = [1]): Uint8Array {
  const mask = gray(width, height, 0);
  for (const y of rows) mask.data.fill(1, y * width, (y + 1) * width);
  return encodePng(mask);
}

/** A minimal valid class: 2 train, 1 test/good, 1 test/crack with its mask, all 8x8 gray. */
function minimalClass(): Record<string, Uint8Array> {
  return {
    "train/good/000.png": encodePng(gray(8, 8)),
    "train/good/001.png": encodePng(gray(8, 8)),
    "test/good/000.png": encodePng(gray(8, 8)),
    "test/crack/000.png": encodePng(gray(8, 8)),
    "ground_truth/crack/000_mask.png": maskPng(8, 8),
  };
}

async function writeTree(files: Record<string, Uint8Array | null>, root?: string): Promise<string> {
  root ??= await Deno.makeTempDir({ prefix: "class-" });
  for (const [path, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(root, dirname(path)), { recursive: true });
    if (bytes) await Deno.writeFile(join(root, path), bytes);
    else await Deno.mkdir(join(root, path), { recursive: true });
  }
  return root;
}

Deno.test("magnetic-tile loads with every defect image paired to its mask, same size, non-empty", async () => {
  const root = `${SHARED}magnetic-tile`;
  const scan = await scanClassFolder(root);
  assert.deepEqual(scan.problems, []);
  const defective = scan.images.filter((image) => image.defect !== "good");
  assert.equal(defective.length, 40);
  for (const image of defective) {
    assert.equal(image.mask, image.name.replace(/^test\/(\w+)\/(.*)\.png$/, "ground_truth/$1/$2_mask.png"));
  }
  const set = await loadClassFolder(root);
  assert.deepEqual([set.train.length, set.test.length, set.channels], [200, 60, 1]);
  for (const sample of set.test.filter((s) => s.defect !== "good")) {
    const { image, mask } = await sample.read(1);
    assert.equal(mask.length, image.width * image.height);
    assert.ok(mask.some((v) => v === 1), `${sample.name} has an empty mask`);
  }
});

Deno.test("the MVTec leather sample validates cleanly and its masks pair by name", async () => {
  const report = await validateClassFolder(`${SHARED}mvtec-leather-sample`);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.warnings, []);
  assert.deepEqual(report.summary.sizes, { "1024x1024": 19 });
  assert.deepEqual(report.summary.channels, { 3: 19 });
  const counts = Object.fromEntries(report.summary.groups.map((g) => [`${g.split}/${g.defect}`, g.images]));
  assert.deepEqual(counts, {
    "train/good": 4,
    "test/good": 4,
    "test/color": 1,
    "test/cut": 2,
    "test/fold": 2,
    "test/glue": 3,
    "test/poke": 3,
  });
  for (const group of report.summary.groups) assert.equal(group.maskCoverage > 0, group.defect !== "good");
  const set = await loadClassFolder(`${SHARED}mvtec-leather-sample`);
  const { image, mask } = await set.test.find((s) => s.name === "test/cut/000.png")!.read(3);
  assert.deepEqual([image.channels, image.height, image.width], [3, 1024, 1024]);
  assert.ok(mask.some((v) => v === 1));
});

/** [what, files changed in a minimal valid class (null: removed), the problems expected] */
const PROBLEMS: [string, Record<string, Uint8Array | null>, string[]][] = [
  [
    "a defect image without a mask",
    { "test/crack/001.png": encodePng(gray(8, 8)) },
    ["test/crack/001.png has no mask: expected ground_truth/crack/001_mask.png"],
  ],
  [
    "a mask without an image",
    { "ground_truth/crack/007_mask.png": maskPng(8, 8) },
    ["ground_truth/crack/007_mask.png has no image: expected test/crack/007.png"],
  ],
  [
    "a mask named like its image",
    { "test/crack/002.png": encodePng(gray(8, 8)), "ground_truth/crack/002.png": maskPng(8, 8) },
    ["ground_truth/crack/002.png is named like its image: rename it 002_mask.png"],
  ],
  [
    "a mask of a different size",
    { "ground_truth/crack/000_mask.png": maskPng(8, 6) },
    ["ground_truth/crack/000_mask.png is 8x6, image is 8x8: masks must match their image"],
  ],
  [
    "masks for a defect type with no test folder",
    { "ground_truth/hole/000_mask.png": maskPng(8, 8) },
    ["ground_truth/hole has masks but test/hole does not exist: add the images or remove it"],
  ],
  [
    "an empty train/good",
    { "train/good/000.png": null, "train/good/001.png": null },
    ["train/good is empty: it needs defect-free training images (PNG or JPEG)"],
  ],
  [
    "a truncated image",
    { "test/good/000.png": encodePng(gray(8, 8)).subarray(0, 30) },
    ["test/good/000.png is truncated: PNG chunk IHDR at byte 8 holds 13 bytes but the file ends at byte 30"],
  ],
];

for (const [label, changes, problems] of PROBLEMS) {
  Deno.test(`validation reports ${label}, and loading refuses the folder`, async () => {
    const root = await writeTree(minimalClass());
    for (const [path, bytes] of Object.entries(changes)) {
      if (bytes === null) await Deno.remove(join(root, path));
    }
    await writeTree(Object.fromEntries(Object.entries(changes).filter(([, b]) => b !== null)), root);
    const report = await validateClassFolder(root);
    assert.deepEqual(report.problems, problems);
    if ((await scanClassFolder(root)).problems.length > 0) {
      await assert.rejects(
        () => loadClassFolder(root),
        (error: Error) =>
          error.message === `${root} cannot be used as a class folder:\n  ${problems.join("\n  ")}`,
      );
    }
  });
}

Deno.test("a folder at the wrong level is pointed to the right one", async () => {
  const parent = await Deno.makeTempDir({ prefix: "classes-" });
  const root = await writeTree(minimalClass(), join(parent, "tiny"));
  const problemFor = async (dir: string) => (await validateClassFolder(dir)).problems;
  assert.deepEqual(await problemFor(parent), [
    `${parent} holds 1 class folders (tiny): point to one of them, e.g. ${root}`,
  ]);
  assert.deepEqual(await problemFor(join(root, "train")), [
    `${root}/train is the train/ folder of a class: point to its parent, ${root}`,
  ]);
  assert.deepEqual(await problemFor(join(root, "test", "crack")), [
    `${root}/test/crack is inside a class folder: point to the class folder, ${root}`,
  ]);
  assert.deepEqual(await problemFor(join(parent, "nope")), [
    `${parent}/nope does not exist or is not a folder`,
  ]);
  const unrelated = await writeTree({ "pictures/a.png": encodePng(gray(4, 4)) });
  assert.deepEqual(await problemFor(unrelated), [
    `${unrelated} is not an MVTec AD class folder: expected train/good, test/good, test/<defect> and ` +
    "ground_truth/<defect>/<name>_mask.png",
  ]);
});

Deno.test("a class folder missing test/ or train/good says which and where", async () => {
  const onlyTrain = await writeTree({ "train/good/000.png": encodePng(gray(8, 8)) });
  assert.deepEqual((await validateClassFolder(onlyTrain)).problems, [
    `test/ is missing: put test images in ${onlyTrain}/test/good and ${onlyTrain}/test/<defect>`,
  ]);
  const onlyTest = await writeTree({ "test/good/000.png": encodePng(gray(8, 8)) });
  assert.deepEqual((await validateClassFolder(onlyTest)).problems, [
    `train/good is missing: put the defect-free training images in ${onlyTest}/train/good`,
  ]);
});

Deno.test("stray entries in train/good are named in warnings and ignored", async () => {
  const root = await writeTree({
    ...minimalClass(),
    "train/good/notes.txt": new TextEncoder().encode("hi"),
    "train/good/old": null,
  });
  const report = await validateClassFolder(root);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.warnings, [
    "train/good/old/ is a folder inside train/good/: it is ignored",
    "train/good/notes.txt is not a PNG or JPEG image: it is ignored",
    "4 images are smaller than the 128x128 patch on a side, so they are enlarged to 256x256 and their " +
    "patches are blurred: train/good/000.png (8x8), train/good/001.png (8x8), test/good/000.png (8x8), ...",
  ]);
  assert.equal((await loadClassFolder(root)).train.length, 2);
});

Deno.test("unusual but valid inputs are accepted: 16-bit, palette, gray+alpha, RGBA, .PNG, JPEG, RGB and soft masks", async () => {
  const rgba = new Uint8Array(8 * 8 * 4).fill(200);
  const softMask = new Uint8Array(64);
  softMask.fill(127, 0, 32); // at the threshold: not a defect
  softMask.fill(128, 32, 40); // just above it: a defect
  const redMask = new Uint8Array(8 * 8 * 3);
  for (let i = 0; i < 8; i++) redMask[i * 3] = 255; // first row marked in red only
  const root = await writeTree({
    "train/good/a16.png": encodeRawPng({
      width: 8,
      height: 8,
      data: new Uint16Array(64).fill(40000),
      channels: 1,
      depth: 16,
    }),
    "train/good/b_palette.png": encodeRawPng({
      width: 8,
      height: 8,
      data: new Uint8Array(64),
      channels: 1,
      depth: 8,
      palette: [[10, 20, 30]],
    }),
    "train/good/c_alpha.png": encodeRawPng({
      width: 8,
      height: 8,
      data: new Uint8Array(128).fill(90),
      channels: 2,
      depth: 8,
    }),
    "train/good/d_rgba.png": encodeRawPng({ width: 8, height: 8, data: rgba, channels: 4, depth: 8 }),
    "train/good/E_UPPER.PNG": encodePng(gray(8, 8)),
    "train/good/f_photo.jpg": new Uint8Array(jpeg.encode({ width: 8, height: 8, data: rgba }, 95).data),
    "test/good/000.png": encodePng(gray(8, 8)),
    "test/crack/soft.png": encodePng(gray(8, 8)),
    "ground_truth/crack/soft_mask.png": encodeRawPng({
      width: 8,
      height: 8,
      data: softMask,
      channels: 1,
      depth: 8,
    }),
    "test/crack/red.JPEG": new Uint8Array(jpeg.encode({ width: 8, height: 8, data: rgba }, 95).data),
    "ground_truth/crack/red_mask.png": encodeRawPng({
      width: 8,
      height: 8,
      data: redMask,
      channels: 3,
      depth: 8,
    }),
  });
  const report = await validateClassFolder(root);
  assert.deepEqual(report.problems, []);
  assert.deepEqual(report.warnings.slice(1), [
    "images mix channel counts (gray (4), gray+alpha (1), RGB (3), RGBA (1)): the class is read as RGB " +
    "because 4 images have colour; gray images are repeated into 3 channels and alpha is dropped",
  ]);
  assert.deepEqual(report.summary.softMasks, 1);
  const set = await loadClassFolder(root);
  assert.equal(set.train.length, 6);
  for (const sample of set.train) assert.equal((await sample.read(3)).image.channels, 3);
  const soft = await set.test.find((s) => s.name === "test/crack/soft.png")!.read(1);
  assert.deepEqual(Array.from(soft.mask), Array.from({ length: 64 }, (_, i) => (i >= 32 && i < 40 ? 1 : 0)));
  const red = await set.test.find((s) => s.name === "test/crack/red.JPEG")!.read(1);
  assert.deepEqual(Array.from(red.mask), Array.from({ length: 64 }, (_, i) => (i < 8 ? 1 : 0)));
});

Deno.test("openValidatedClassFolder passes warnings on, refuses a bad folder before loading, loads a good one", async () => {
  const root = await writeTree({ ...minimalClass(), "train/good/notes.txt": new TextEncoder().encode("hi") });
  const warned: string[] = [];
  const set = await openValidatedClassFolder(root, (line) => warned.push(line));
  assert.deepEqual(warned.slice(0, 1), [
    "warning: train/good/notes.txt is not a PNG or JPEG image: it is ignored",
  ]);
  assert.equal(set.train.length, 2);
  await writeTree({ "ground_truth/crack/000_mask.png": maskPng(8, 6) }, root);
  await assert.rejects(
    () => openValidatedClassFolder(root, () => {}),
    (error: Error) =>
      error.message ===
        `class ${basename(root)} (${root}) cannot be used (run deno task inspect-data ${root}):\n` +
          "  ground_truth/crack/000_mask.png is 8x6, image is 8x8: masks must match their image",
  );
});
