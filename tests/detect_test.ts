/**
 * deno task detect: the tiling's geometry (a ramp survives tile and stitch), the overlay's blend, the model
 * rebuilt from a weights file alone, whole-image detection on real images, and every bad input refused by
 * name with nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cpu } from "../engine/cpu.ts";
import { tensor } from "../engine/create.ts";
import { Random } from "../engine/random.ts";
import { decodeSafetensors, saveSafetensors } from "../engine/safetensors.ts";
import { noGrad } from "../engine/tensor.ts";
import { createImage } from "../data/image.ts";
import { readImageFile } from "../data/image_file.ts";
import { PAPER_GEOMETRY } from "../data/prepare.ts";
import { Autoencoder } from "../models/autoencoder.ts";
import { RotationStn, StnAutoencoder } from "../models/stn.ts";
import { detectionMetadata, loadDetector, storeDetectionSettings } from "../detect/detector.ts";
import { heatMapOverlay } from "../detect/heat_map.ts";
import { stitchMaps, tileImage } from "../detect/tiling.ts";
import { detect, type DetectOptions, parseDetectArgs, UsageError } from "../cli/detect.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
/** A real gray, non-square PNG: 240x289, written by Pillow (tests/fixtures/SOURCE.md). */
const GRAY = join(FIXTURES, "leather-crop/gray.png");
const LEATHER = join(FIXTURES, "mvtec-leather/test/glue/008.png");

/** A tiny Table-1 autoencoder (base 4, d = 8) at the paper's 128x128 input. */
const tinyAe = (channels: 1 | 3) => new Autoencoder({ channels, base: 4, latent: 8, rng: new Random(7) });

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "detect_test_" });
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

Deno.test("tiling: a linear ramp comes back from tile and stitch at its own size", () => {
  // 301 x 203: odd, not square, enlarged across and shrunk down on the way to 256x256.
  const width = 301, height = 203;
  const ramp = (x: number, y: number) => 0.2 + (0.5 * (x + 0.5)) / width + (0.3 * (y + 0.5)) / height;
  const image = createImage(1, height, width);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) image.data[y * width + x] = ramp(x, y);
  const tiles = tileImage(image, PAPER_GEOMETRY);
  assert.deepEqual(tiles.shape, [4, 1, 128, 128]);
  assert.deepEqual(tiles.span, [18, 108]); // 128 px at offset 26 of 181, scaled by 128/181
  const back = stitchMaps(tiles.images, tiles.span, PAPER_GEOMETRY, width, height);
  // Away from the patch edges (4 px of the 256x256 image) every resampling step sees only content, and
  // bilinear and triangle filters keep a ramp a ramp. The triangle taps of the 181 -> 128 shrink sit
  // asymmetrically about some centres, shifting the ramp by up to ~0.03 px: with slopes of at most
  // 0.5 / 128 per 256-px unit that is < 2e-4. A geometry off by one pixel would be off by > 1.5e-3.
  const interior = (i: number, n: number) => {
    const l = (((i + 0.5) * 256) / n) % 128;
    return l >= 4 && l <= 124;
  };
  let worst = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (interior(x, width) && interior(y, height)) {
        worst = Math.max(worst, Math.abs(back[y * width + x] - ramp(x, y)));
      }
    }
  }
  assert.ok(worst < 2e-4, `worst interior error ${worst}`);
});

Deno.test("tiling: each pixel reads only its own patch's content, up to the image's edges", () => {
  const width = 97, height = 130;
  const { span } = tileImage(createImage(1, height, width), PAPER_GEOMETRY);
  // Tile k holds k + 1 on its content square and -1 outside it, which must never reach the image.
  const plane = 128 * 128;
  const maps = Float32Array.from({ length: 4 * plane }, (_, i) => {
    const x = i % 128, y = Math.floor(i / 128) % 128;
    const inside = span[0] <= x && x <= span[1] && span[0] <= y && y <= span[1];
    return inside ? Math.floor(i / plane) + 1 : -1;
  });
  const back = stitchMaps(maps, span, PAPER_GEOMETRY, width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Column x is in the right half of the 256x256 image when its centre (x + 1/2) 256 / W is past 128.
      const tile = 2 * Number(y + 0.5 >= height / 2) + Number(x + 0.5 >= width / 2);
      assert.equal(back[y * width + x], tile + 1, `pixel (${x}, ${y})`);
    }
  }
});

Deno.test("heat map: the image where the residual is 0, 0.3 image + 0.7 pale yellow from twice the threshold", () => {
  const image = createImage(1, 1, 3);
  image.data.set([0.2, 0.4, 0.6]);
  const overlay = heatMapOverlay(image, Float32Array.of(0, 0.25, 1), 0.25);
  const pixel = (i: number) => [0, 1, 2].map((c) => overlay.data[c * 3 + i]);
  const close = (actual: number[], expected: number[]) =>
    actual.forEach((v, c) => assert.ok(Math.abs(v - expected[c]) < 1e-6, `${actual} vs ${expected}`));
  close(pixel(0), [0.2, 0.2, 0.2]);
  // r = T: h = 1/2, inferno's midpoint (187, 55, 84), opacity 0.35.
  close(pixel(1), [187, 55, 84].map((v) => 0.65 * 0.4 + (0.35 * v) / 255));
  close(pixel(2), [252, 255, 164].map((v) => 0.3 * 0.6 + (0.7 * v) / 255));
});

Deno.test("detector: AE and STN+AE rebuilt from their weights files compute what the originals do", async () => {
  const dir = await tempDir();
  const path = join(dir, "weights.safetensors");
  // Reduced localisation sizes: they too are read off the shapes.
  const stnAe = new StnAutoencoder({
    channels: 3,
    base: 4,
    latent: 8,
    inputSize: 32,
    convChannels: [4, 4, 8, 8],
    hiddenUnits: [16, 8],
    sampler: "naive",
    rng: new Random(8),
  });
  const models = [tinyAe(1), stnAe];
  for (const [model, kind, channels] of [[models[0], "AE", 1], [models[1], "STN+AE", 3]] as const) {
    const metadata = detectionMetadata({ sampler: "naive", thresholds: { l2: 0.02 } });
    await saveSafetensors(path, model.stateDict(), metadata);
    const detector = await loadDetector(path, cpu);
    assert.deepEqual(
      [detector.kind, detector.channels, detector.latent, detector.size, detector.thresholds],
      [kind, channels, 8, 128, { l2: 0.02 }],
    );
    if (detector.model instanceof StnAutoencoder) {
      assert.deepEqual([detector.model.stn.sampler, detector.model.stn.inputSize], ["naive", 32]);
    }
    const input = Float32Array.from({ length: channels * 128 * 128 }, (_, i) => (i % 251) / 251);
    const [expected, actual] = noGrad(() =>
      [model, detector.model].map((m) => m.forward(tensor(input, [1, channels, 128, 128])).cpuData())
    );
    // The same weights and ops on the CPU: bit for bit.
    assert.equal(actual.findIndex((v, i) => v !== expected[i]), -1);
    detector.model.dispose();
    model.dispose();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detector: storeDetectionSettings adds thresholds to a trainer's weights file, keeping the rest", async () => {
  const dir = await tempDir();
  const path = join(dir, "weights.safetensors");
  const model = tinyAe(1);
  await saveSafetensors(path, model.stateDict(), { sampler: "exact", note: "kept" });
  await storeDetectionSettings(path, { thresholds: { ssim: 0.375, l2: 0.0125 } });
  const detector = await loadDetector(path, cpu);
  assert.deepEqual(detector.thresholds, { ssim: 0.375, l2: 0.0125 });
  const { metadata } = decodeSafetensors(await Deno.readFile(path), path);
  assert.deepEqual(metadata, {
    sampler: "exact",
    note: "kept",
    "threshold.ssim": "0.375",
    "threshold.l2": "0.0125",
  });
  detector.model.dispose();
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detector: files of other models are refused by name, saying what is wrong", async () => {
  const dir = await tempDir();
  const path = join(dir, "other.safetensors");
  const refuses = async (pattern: RegExp) => {
    await assert.rejects(loadDetector(path, cpu), (e: Error) => {
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, pattern);
      return true;
    });
  };
  const stn = new RotationStn({ channels: 1, rng: new Random(1) });
  await saveSafetensors(path, stn.stateDict());
  await refuses(/encoder\.0\.weight is absent.*localisation\.0\.weight.*STN pre-training weights/);
  const ae = tinyAe(1);
  const state = ae.stateDict();
  await saveSafetensors(path, { ...state, "decoder.2.weight": state["decoder.0.weight"] });
  await refuses(
    /the weights of this project's AE: decoder\.2\.weight is \[8, 4, 8, 8\], expected \[4, 8, 3, 3\]/,
  );
  await saveSafetensors(path, { ...state, "head.weight": state["encoder.0.bias"] });
  await refuses(/head\.weight is unexpected/);
  await saveSafetensors(path, state, { "threshold.ssim": "high" });
  await refuses(/metadata threshold\.ssim is "high", expected a finite number/);
  await Deno.writeFile(path, await Deno.readFile(GRAY));
  await refuses(/header length \d+ runs past the end of the file/);
  await assert.rejects(
    loadDetector(join(dir, "missing.safetensors"), cpu),
    /weights file .*missing\.safetensors does not exist/,
  );
  stn.dispose();
  ae.dispose();
  await Deno.remove(dir, { recursive: true });
});

/** Runs the CLI's work on the CPU, collecting what it prints. */
async function runDetect(args: string[]) {
  const lines: string[] = [];
  const options = parseDetectArgs([...args, "--device", "cpu"]) as DetectOptions;
  const detected = await detect(options, (line) => lines.push(line));
  return { detected, lines };
}

Deno.test("detect: a real gray, non-square image and a 1024x1024 RGB one get an overlay and a mask of their size", async () => {
  const dir = await tempDir();
  const weights = join(dir, "weights.safetensors");
  const ae = tinyAe(1);
  await saveSafetensors(weights, ae.stateDict(), detectionMetadata({ thresholds: { ssim: 0.5 } }));
  const out = join(dir, "out");
  // The SSIM threshold comes from the file; the L2 one from the command line.
  const runs = [
    await runDetect(["--weights", weights, "--image", GRAY, "--out", out]),
    await runDetect([
      "--weights",
      weights,
      "--image",
      LEATHER,
      "--residual",
      "l2",
      "--threshold",
      "0.05",
      "--out",
      out,
    ]),
  ];
  assert.deepEqual(await filesIn(out), [
    "008_mask.png",
    "008_overlay.png",
    "gray_mask.png",
    "gray_overlay.png",
  ]);
  for (const [k, { detected: [found], lines }] of runs.entries()) {
    const source = await readImageFile(found.image);
    const overlay = await readImageFile(found.overlay);
    const mask = await readImageFile(found.mask);
    assert.deepEqual([overlay.channels, overlay.width, overlay.height], [3, source.width, source.height]);
    assert.deepEqual([mask.channels, mask.width, mask.height], [1, source.width, source.height]);
    // The mask is binary and marks exactly the reported fraction of pixels.
    let white = 0;
    for (const v of mask.data) {
      assert.ok(v === 0 || v === 1, `mask value ${v}`);
      white += v;
    }
    const { max, mean, above } = found.scores;
    assert.equal(white / mask.data.length, above);
    assert.ok(0 < mean && mean <= max && Number.isFinite(max), `mean ${mean}, max ${max}`);
    assert.equal(lines[0], "device cpu: asked for with --device");
    assert.match(
      lines[1],
      k === 0
        ? /AE, 1 channel\(s\), latent 8; ssim residual, threshold 0\.5, on cpu/
        : /l2 residual, threshold 0\.05/,
    );
    assert.ok(lines[2].startsWith(`${found.image}: max `) && lines[2].includes(found.overlay), lines[2]);
  }
  ae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detect: bad inputs are refused by name and leave no output", async () => {
  const dir = await tempDir();
  const weights = join(dir, "weights.safetensors");
  const ae = tinyAe(1);
  await saveSafetensors(weights, ae.stateDict());
  const notImage = join(dir, "notes.png");
  await Deno.writeTextFile(notImage, "not an image");
  const out = join(dir, "out");
  const fails = (args: string[], pattern: RegExp, kind: new (message: string) => Error = Error) =>
    assert.rejects(runDetect([...args, "--out", out]), (e: Error) => {
      assert.ok(e instanceof kind, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  await fails(
    ["--weights", weights, "--image", GRAY],
    /no threshold for the ssim residual: pass --threshold T/,
  );
  await fails(
    ["--weights", weights, "--image", GRAY, "--image", notImage, "--threshold", "0.3"],
    new RegExp(`^${notImage}`),
  );
  await fails(
    ["--weights", weights, "--image", join(dir, "gone.png"), "--threshold", "0.3"],
    /image .*gone\.png does not exist/,
  );
  await fails(
    ["--weights", join(dir, "gone.safetensors"), "--image", GRAY],
    /weights file .*gone\.safetensors does not exist/,
  );
  await fails(["--weights", GRAY, "--image", GRAY], new RegExp(`^${GRAY}: header length`));
  await fails(
    ["--weights", weights, "--image", GRAY, "--image", join(FIXTURES, "x/gray.png")],
    /both write gray_overlay\.png/,
    UsageError,
  );
  await fails(
    ["--weights", weights, "--image", GRAY, "--threshold", "0"],
    /--threshold is 0, expected a positive number/,
    UsageError,
  );
  await fails(
    ["--weights", weights, "--image", GRAY, "--residual", "l1"],
    /--residual is l1, expected ssim or l2/,
    UsageError,
  );
  await fails(["--image", GRAY], /--weights FILE is required/, UsageError);
  assert.deepEqual(await filesIn(out), []);
  ae.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("detect: the command exits non-zero naming the missing file, and --help shows examples", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../cli/detect.ts", import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const missing = await run(["--weights", "/nonexistent/w.safetensors", "--image", GRAY, "--device", "cpu"]);
  assert.equal(missing.code, 1);
  assert.equal(
    new TextDecoder().decode(missing.stderr),
    "detect: weights file /nonexistent/w.safetensors does not exist\n",
  );
  const usage = await run(["--image", GRAY]);
  assert.equal(usage.code, 2);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /Examples\n {2}deno task detect --weights/);
});
