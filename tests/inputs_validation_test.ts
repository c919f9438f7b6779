/**
 * Issue 13, inputs: what validation reads is what training will read. One case per item, each on a class
 * folder generated here in a temporary folder: corrupt pixels, CRCs and JPEG scans found by decoding every
 * file; sizes; train and reproduce validating first and naming the class; symbolic links; unreadable
 * folders; two --data folders of one name; the channel rule; EXIF orientation; 000.png next to 000.jpg;
 * --plan's quoting; relative paths under `deno task`; inspect-data --help; 0/1 masks.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { deflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { createImage, type Image } from "../data/image.ts";
import { decodeImage, encodePng } from "../data/image_file.ts";
import { crc32 } from "../data/image_header.ts";
import { loadClassFolder } from "../data/mvtec_folder.ts";
import { describeSummary, openValidatedClassFolder, validateClassFolder } from "../data/validate_folder.ts";
import { classIds } from "../cli/reproduce.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function gray(width: number, height: number, value = 0.5): Image {
  const image = createImage(1, height, width);
  image.data.fill(value);
  return image;
}

function rgb(width: number, height: number): Image {
  const image = createImage(3, height, width);
  image.data.fill(0.25, 0, width * height);
  image.data.fill(0.75, width * height);
  return image;
}

/** A mask PNG (0 or 255) with its first row marked. */
function maskPng(width: number, height: number): Uint8Array {
  const mask = gray(width, height, 0);
  mask.data.fill(1, 0, width);
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

async function writeTree(files: Record<string, Uint8Array>, root?: string): Promise<string> {
  root ??= await Deno.makeTempDir({ prefix: "class-" });
  for (const [path, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(root, dirname(path)), { recursive: true });
    await Deno.writeFile(join(root, path), bytes);
  }
  return root;
}

/** A PNG built chunk by chunk, each with a correct CRC. */
function pngFromChunks(chunks: [string, Uint8Array][]): Uint8Array {
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const chunk = new Uint8Array(12 + data.length);
    const view = new DataView(chunk.buffer);
    view.setUint32(0, data.length);
    chunk.set(new TextEncoder().encode(type), 4);
    chunk.set(data, 8);
    view.setUint32(8 + data.length, crc32(chunk.subarray(4, 8 + data.length)));
    parts.push(chunk);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0);
  return out;
}

function ihdr(width: number, height: number): Uint8Array {
  const data = new Uint8Array(13);
  const view = new DataView(data.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  data.set([8, 0, 0, 0, 0], 8); // 8-bit gray, not interlaced
  return data;
}

/** An 8x8 gray PNG whose rows are filtered with `filter` (0-4 valid) and whose IDAT is `idat` if given. */
function grayPng(filter: number, idat?: Uint8Array): Uint8Array {
  const rows = new Uint8Array(8 * 9);
  for (let y = 0; y < 8; y++) rows[y * 9] = filter;
  return pngFromChunks([["IHDR", ihdr(8, 8)], ["IDAT", idat ?? deflateSync(rows)], [
    "IEND",
    new Uint8Array(),
  ]]);
}

function jpegBytes(width: number, height: number, pixel: (x: number, y: number) => number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgba.fill(pixel(x, y), (y * width + x) * 4, (y * width + x) * 4 + 4);
  }
  return new Uint8Array(jpeg.encode({ width, height, data: rgba }, 95).data);
}

/** A JPEG whose entropy-coded scan is overwritten with zeros: its header and end marker are intact. */
function garbledJpeg(): Uint8Array {
  const bytes = jpegBytes(64, 64, (x, y) => (x * 37 + y * 11) % 256);
  let sos = 0;
  while (!(bytes[sos] === 0xff && bytes[sos + 1] === 0xda)) sos++;
  bytes.fill(0, sos + 20, sos + 220);
  return bytes;
}

/** `bytes` (a JPEG) with an APP1 Exif segment saying `orientation` right after its SOI marker. */
function withOrientation(bytes: Uint8Array, orientation: number): Uint8Array {
  const app1 = new Uint8Array(36);
  const view = new DataView(app1.buffer);
  view.setUint16(0, 0xffe1);
  view.setUint16(2, 34);
  app1.set([0x45, 0x78, 0x69, 0x66, 0, 0, 0x4d, 0x4d, 0, 42], 4); // "Exif\0\0", big-endian TIFF
  view.setUint32(14, 8); // IFD0 right after the TIFF header
  view.setUint16(18, 1); // one entry
  view.setUint16(20, 0x0112); // Orientation, SHORT, count 1
  view.setUint16(22, 3);
  view.setUint32(24, 1);
  view.setUint16(28, orientation);
  const out = new Uint8Array(bytes.length + app1.length);
  out.set(bytes.subarray(0, 2));
  out.set(app1, 2);
  out.set(bytes.subarray(2), 2 + app1.length);
  return out;
}

async function run(
  script: string,
  args: string[],
  extra: { cwd?: string; env?: Record<string, string> } = {},
) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-webgpu", join(ROOT, script), ...args],
    ...extra,
  }).output();
  const text = new TextDecoder();
  return { code, out: text.decode(stdout), err: text.decode(stderr) };
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

// --- Validation reads what training will read ---

/** [what, the broken file, the problem validation must report]; each passed header-only validation before. */
const CORRUPT: [string, Uint8Array, string][] = [
  [
    "a PNG with a bad filter byte",
    grayPng(7),
    "train/good/001.png is corrupt: PNG row 0 has filter type 7, expected 0-4",
  ],
  [
    "a PNG whose pixel data does not inflate",
    grayPng(0, new Uint8Array([1, 2, 3, 4])),
    "train/good/001.png is truncated or corrupt: its compressed pixel data does not inflate",
  ],
  [
    "a PNG with a wrong CRC",
    (() => {
      const bytes = encodePng(gray(8, 8));
      bytes[41] ^= 0xff; // inside the IDAT data, which starts at byte 41
      return bytes;
    })(),
    "train/good/001.png is corrupt: PNG chunk IDAT at byte 33 fails its CRC check",
  ],
  [
    "a JPEG with a garbled scan",
    garbledJpeg(),
    "train/good/001.png is a corrupt JPEG: invalid huffman sequence",
  ],
];

for (const [label, bytes, problem] of CORRUPT) {
  Deno.test(`validation decodes every image: ${label} is a problem naming the file`, async () => {
    const root = await writeTree({ ...minimalClass(), "train/good/001.png": bytes });
    const { problems } = await validateClassFolder(root);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.ok(problems[0].startsWith(problem), problems[0]);
  });
}

Deno.test("inspect-data exits 1 on corrupt pixels, naming the class and the file, with no stack trace", async () => {
  const parent = await Deno.makeTempDir();
  const root = await writeTree({ ...minimalClass(), "train/good/001.png": grayPng(7) }, join(parent, "bolt"));
  const { code, out, err } = await run("cli/inspect_data.ts", [root]);
  assert.equal(code, 1, out);
  assert.match(err, /^problem: train\/good\/001\.png is corrupt: PNG row 0 has filter type 7/m);
  assert.match(err, new RegExp(`^class bolt \\(${root}\\) cannot be used: 1 problem to fix\\.$`, "m"));
  assert.doesNotMatch(err, /Uncaught|^ {4}at /m);
});

Deno.test("validation decodes on worker threads with the same findings, and loading reuses the pixels", async () => {
  const files: Record<string, Uint8Array> = { ...minimalClass(), "test/good/001.png": grayPng(7) };
  for (let i = 2; i < 20; i++) {
    files[`train/good/${String(i).padStart(3, "0")}.png`] = encodePng(gray(8, 8, i / 20));
  }
  const root = await writeTree(files);
  const threaded = await validateClassFolder(root, { workers: 2 });
  assert.deepEqual(threaded, await validateClassFolder(root, { workers: 0 }));
  assert.equal(threaded.problems.length, 1);
  await Deno.remove(join(root, "test/good/001.png"));
  const set = await openValidatedClassFolder(root, () => {}, { workers: 2 });
  // The pixels come from validation: the file is gone, the first read still has them.
  await Deno.remove(join(root, "train/good/005.png"));
  const sample = set.train.find((s) => s.name === "train/good/005.png")!;
  assert.ok((await sample.read(1)).image.data.every((v) => Math.abs(v - 5 / 20) < 1 / 255));
});

Deno.test("sizes: a 100000x100000 header is a problem stating the limit; images under 128 px are a warning", async () => {
  const root = await writeTree({
    ...minimalClass(),
    "train/good/001.png": pngFromChunks([["IHDR", ihdr(100000, 100000)], [
      "IDAT",
      deflateSync(new Uint8Array(1)),
    ], [
      "IEND",
      new Uint8Array(),
    ]]),
  });
  const { problems, warnings } = await validateClassFolder(root);
  assert.deepEqual(problems, [
    "train/good/001.png is 100000x100000 (10000000000 pixels), larger than the limit of 67108864 pixels " +
    "(8192x8192): a corrupt header, or an image to resize first",
  ]);
  assert.deepEqual(warnings, [
    "3 images are smaller than the 128x128 patch on a side, so they are enlarged to 256x256 and their " +
    "patches are blurred: train/good/000.png (8x8), test/good/000.png (8x8), test/crack/000.png (8x8)",
  ]);
});

Deno.test("train validates its class folder before any work, naming the class and the file", async () => {
  const parent = await Deno.makeTempDir();
  const root = await writeTree(
    { ...minimalClass(), "test/crack/000.png": grayPng(0, new Uint8Array([9])) },
    join(parent, "nut"),
  );
  const out = join(parent, "run");
  const config = join(parent, "run.json");
  await Deno.writeTextFile(config, JSON.stringify({ class: root, run: "ae", out, samples: 3 }));
  const { code, err } = await run("cli/train.ts", ["--config", config, "--device", "cpu"]);
  assert.equal(code, 1, err);
  assert.match(err, new RegExp(`^train: class nut \\(${root}\\) cannot be used`, "m"));
  assert.match(err, /^ {2}test\/crack\/000\.png is truncated or corrupt/m);
  assert.equal(await exists(out), false, "no run folder is made");
});

Deno.test("reproduce --data validates every class before any work; the error names each class and file", async () => {
  const parent = await Deno.makeTempDir();
  const a = await writeTree({ ...minimalClass(), "train/good/001.png": grayPng(7) }, join(parent, "alpha"));
  const b = await writeTree({ ...minimalClass(), "test/good/000.png": grayPng(5) }, join(parent, "beta"));
  const out = join(parent, "out");
  const args = ["--preset", "smoke", "--device", "cpu", "--data", a, "--data", b, "--out", out];
  const { code, err } = await run("cli/reproduce.ts", args);
  assert.equal(code, 1, err);
  assert.match(err, new RegExp(`class alpha \\(${a}\\) cannot be used[^]*train/good/001\\.png is corrupt`));
  assert.match(err, new RegExp(`class beta \\(${b}\\) cannot be used[^]*test/good/000\\.png is corrupt`));
  assert.equal(await exists(out), false, "--out is not created");
});

Deno.test("a class without test/good is refused now, not when Fig. 4 and the spread need it", async () => {
  const files = minimalClass();
  delete files["test/good/000.png"];
  const root = await writeTree(files);
  assert.deepEqual((await validateClassFolder(root)).problems, [
    "test/good is missing: the orientation spread and Fig. 4 need defect-free test images; " +
    `put some in ${root}/test/good`,
  ]);
});

// --- Real folders ---

Deno.test("symlinked images and folders count as what they point to; a dangling link is a problem", async () => {
  const store = await writeTree({ "a.png": encodePng(gray(8, 8)), "b.png": encodePng(gray(8, 8)) });
  const files = minimalClass();
  delete files["train/good/000.png"];
  delete files["train/good/001.png"];
  const root = await writeTree(files);
  await Deno.mkdir(join(root, "train"));
  await Deno.symlink(store, join(root, "train/good")); // a linked folder of images
  await Deno.symlink(join(store, "a.png"), join(root, "test/good/001.png")); // a linked image
  const report = await validateClassFolder(root);
  assert.deepEqual(report.problems, []);
  const counts = Object.fromEntries(report.summary.groups.map((g) => [`${g.split}/${g.defect}`, g.images]));
  assert.deepEqual(counts, { "train/good": 2, "test/good": 2, "test/crack": 1 });
  assert.ok(!report.warnings.some((w) => w.includes("not a PNG or JPEG")), report.warnings.join("\n"));
  await Deno.symlink(join(store, "gone.png"), join(root, "test/good/002.png"));
  assert.deepEqual((await validateClassFolder(root)).problems, [
    `test/good/002.png is a link to ${store}/gone.png, which does not exist: restore the file ` +
    "(with git-annex: git annex get; with DVC: dvc pull) or remove the link",
  ]);
});

Deno.test("an unreadable folder is a problem that names it, not a PermissionDenied stack trace", async () => {
  const root = await writeTree(minimalClass());
  // Root reads any folder whatever its mode, so Deno's own permission denial stands in for it there.
  const { code, err } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--deny-read=${root}/train/good`, join(ROOT, "cli/inspect_data.ts"), root],
  }).output().then((r) => ({ code: r.code, err: new TextDecoder().decode(r.stderr) }));
  assert.equal(code, 1, err);
  assert.match(err, /^problem: train\/good\/ cannot be read: permission denied$/m);
  assert.doesNotMatch(err, /Uncaught|^ {4}at /m);
  if (Deno.uid() !== 0) {
    await Deno.chmod(join(root, "test/crack"), 0o000);
    try {
      assert.deepEqual((await validateClassFolder(root)).problems, [
        "test/crack/ cannot be read: permission denied",
      ]);
    } finally {
      await Deno.chmod(join(root, "test/crack"), 0o755);
    }
  }
});

Deno.test("two --data folders named alike get distinct class ids; ids that still clash are refused", () => {
  assert.deepEqual(
    [...classIds(["/d/A/screw", "/d/B/screw", "/d/B/nut"]).keys()],
    ["A-screw", "B-screw", "nut"],
  );
  assert.throws(
    () => classIds(["/x/A/screw", "/y/A/screw"]),
    /--data \/x\/A\/screw and \/y\/A\/screw would both be class A-screw: rename one of the folders/,
  );
});

Deno.test("the channel count is RGB when any image has colour, whatever comes first by name, and the warning says why", async () => {
  const root = await writeTree({ ...minimalClass(), "train/good/002.png": encodePng(rgb(8, 8)) });
  const report = await validateClassFolder(root);
  assert.equal(report.classChannels, 3);
  assert.ok(
    report.warnings.includes(
      "images mix channel counts (gray (4), RGB (1)): the class is read as RGB because 1 image has colour; " +
        "gray images are repeated into 3 channels and alpha is dropped",
    ),
    report.warnings.join("\n"),
  );
  assert.equal((await loadClassFolder(root)).channels, 3); // 000.png, the first by name, is gray
});

Deno.test("a JPEG's EXIF orientation is applied, and named when its mask's size disagrees", async () => {
  // Stored 16x8, bright left half; orientation 6 turns it 90 degrees clockwise: 8x16, bright top half.
  const turned = withOrientation(jpegBytes(16, 8, (x) => (x < 8 ? 250 : 5)), 6);
  const image = decodeImage(turned, "turned.jpg");
  assert.deepEqual([image.width, image.height], [8, 16]);
  assert.ok(image.data[0] > 0.9 && image.data[8 * 16 - 1] < 0.1);
  const root = await writeTree({
    ...minimalClass(),
    "test/crack/001.jpg": turned,
    "ground_truth/crack/001_mask.png": maskPng(8, 16),
  });
  assert.deepEqual((await validateClassFolder(root)).problems, []);
  await writeTree({ "ground_truth/crack/001_mask.png": maskPng(16, 8) }, root);
  assert.deepEqual((await validateClassFolder(root)).problems, [
    "ground_truth/crack/001_mask.png is 16x8, image is 8x16 (after the EXIF orientation 6 of " +
    "test/crack/001.jpg, applied): masks must match their image",
  ]);
});

Deno.test("000.png next to 000.jpg in a defect folder is a problem naming both", async () => {
  const root = await writeTree({ ...minimalClass(), "test/crack/000.jpg": jpegBytes(8, 8, () => 128) });
  assert.deepEqual((await validateClassFolder(root)).problems, [
    "test/crack/000.jpg and test/crack/000.png share the name 000: a mask pairs with its image by name, so " +
    "it could belong to either; remove or rename all but one",
  ]);
});

Deno.test("--plan prints commands whose paths survive the shell, spaces and quotes included", async () => {
  const parent = await Deno.makeTempDir();
  const dir = join(parent, "my data", "it's", "screw");
  await writeTree(minimalClass(), dir);
  const out = join(parent, "out dir");
  const plan = await run("cli/reproduce.ts", [
    "--preset",
    "smoke",
    "--data",
    dir,
    "--out",
    out,
    "--plan",
  ]);
  assert.equal(plan.code, 0, plan.err);
  const line = plan.out.split("\n").find((l) => l.endsWith("--only screw-ae-s1"))!;
  // The shell splits the printed line back into the words reproduce was given.
  const words = await new Deno.Command("bash", {
    args: ["-c", line.replace(/^deno task reproduce/, "printf '%s\\n'")],
  }).output();
  assert.deepEqual(new TextDecoder().decode(words.stdout).trim().split("\n"), [
    "--preset",
    "smoke",
    "--data",
    dir,
    "--device",
    "auto",
    "--out",
    out,
    "--only",
    "screw-ae-s1",
  ]);
});

Deno.test("relative paths given to a task resolve against the caller's folder (INIT_CWD), not the project root", async () => {
  const caller = await Deno.makeTempDir();
  await writeTree(minimalClass(), join(caller, "washer"));
  // As `deno task` runs it: in the project root, with the caller's folder in INIT_CWD.
  const env = { INIT_CWD: caller };
  const inspect = await run("cli/inspect_data.ts", ["washer"], { cwd: ROOT, env });
  assert.equal(inspect.code, 0, inspect.err);
  assert.match(inspect.out, /^class folder washer$/m);
  const args = [
    "--out",
    "made",
    "--classes",
    "screw",
    "--size",
    "64",
    "--train-good",
    "1",
    "--test-good",
    "1",
  ];
  const made = await run("cli/make_data.ts", [...args, "--defective", "0"], { cwd: ROOT, env });
  assert.equal(made.code, 0, made.err);
  assert.ok(await exists(join(caller, "made/screw/train/good/000.png")));
  assert.equal(await exists(join(ROOT, "made")), false);
});

// --- Smaller items ---

Deno.test("inspect-data --help prints usage and exits 0; a bad option prints it and exits 2", async () => {
  const help = await run("cli/inspect_data.ts", ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.out, /^deno task inspect-data DIR\n/);
  const bad = await run("cli/inspect_data.ts", ["--colour"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^inspect-data: Unknown option '--colour'[^]*deno task inspect-data DIR/);
  assert.doesNotMatch(bad.err, /Uncaught|^ {4}at /m);
});

Deno.test("0/1 masks are summarised as empty, not as soft edges", async () => {
  const zeroOne = new Uint8Array(64);
  zeroOne.fill(1, 0, 8);
  const { encode } = await import("fast-png");
  const root = await writeTree({
    ...minimalClass(),
    "ground_truth/crack/000_mask.png": encode({ width: 8, height: 8, data: zeroOne, channels: 1, depth: 8 }),
  });
  const report = await validateClassFolder(root);
  assert.deepEqual(
    [report.summary.softMasks, report.summary.emptyMasks, report.summary.zeroOneMasks],
    [0, 1, 1],
  );
  assert.ok(
    describeSummary(report.summary).includes(
      "  empty masks (no value above 127): 1, 1 of them written as 0/1 instead of 0/255",
    ),
  );
  assert.ok(report.warnings.includes(
    "ground_truth/crack/000_mask.png holds only the values 0 and 1, so it reads as empty (defects are values " +
      "above 127): scale it to 0 and 255",
  ));
});
