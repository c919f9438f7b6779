/// <reference lib="deno.worker" />
/**
 * A worker thread that runs `checkSample` for `validate_folder.ts`: a job in, the checked sample out, its
 * pixels transferred (not copied) back.
 */
import { checkSample, type SampleJob } from "./sample_check.ts";

self.onmessage = async (event: MessageEvent<{ id: number; job: SampleJob }>) => {
  const { id, job } = event.data;
  const checked = await checkSample(job);
  const buffers = [checked.image, checked.mask].flatMap((
    image,
  ) => (image ? [image.data.buffer as ArrayBuffer] : []));
  self.postMessage({ id, checked }, buffers);
};
