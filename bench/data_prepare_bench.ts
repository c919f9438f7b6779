/**
 * Speed of the embedded data: generating one 512x512 image per class, and the paper's preparation of
 * 10,000 training patches (as the paper uses per class) from texture1's 100 training images. The source
 * images are rendered before the timed part, so the last bench times the preparation alone; it runs once
 * (about half a minute on a 2-core CPU).
 *   deno bench -A bench/data_prepare_bench.ts
 */
import type { ClassSet } from "../data/class_set.ts";
import { prepareTrainingSets } from "../data/prepare.ts";
import {
  DEFAULT_SYNTHETIC,
  renderSample,
  SYNTHETIC_CLASSES,
  syntheticClass,
} from "../data/synthetic/classes.ts";

let image = 0;
for (const name of SYNTHETIC_CLASSES) {
  Deno.bench(`render one defect-free ${name} image, 512x512`, { group: "render" }, () => {
    renderSample(name, DEFAULT_SYNTHETIC, `train/good/${image++}.png`);
  });
}

Deno.bench("prepare 10,000 training patches (8,000 + 2,000 validation) from 100 texture1 images", {
  n: 1,
  warmup: 0,
}, async (b) => {
  const generated = syntheticClass("texture1");
  const rendered = await Promise.all(generated.train.map((sample) => sample.read(1)));
  const set: ClassSet = {
    ...generated,
    train: generated.train.map((sample, i) => ({ ...sample, read: () => Promise.resolve(rendered[i]) })),
  };
  b.start();
  await prepareTrainingSets(set, { samples: 10_000, seed: 0, cacheDir: null });
  b.end();
});
