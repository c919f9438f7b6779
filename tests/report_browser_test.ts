/**
 * report.html in a real browser: Debian's headless Chromium opens the page from disk under the DevTools
 * protocol (a WebSocket, no npm package), which reports every console message, uncaught exception, log
 * entry and request of the page. The page must load with no error and no request beyond file: and data:
 * URLs, show its tables, charts and images, and give a non-trivial screenshot. A deliberate console error
 * and network request afterwards prove the listeners would have seen them.
 * Without Chromium the test is skipped loudly; with CI=true that is a failure.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeReport } from "../report/html.ts";
import {
  type ConfigurationResult,
  CONFIGURATIONS,
  type DetectionFigures,
  type Fig4Result,
  type Fig7Result,
  type PretrainResult,
  type ProtocolSummary,
} from "../experiments/results.ts";
import { createImage } from "../data/image.ts";
import { encodePng, readImageFile } from "../data/image_file.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--remote-debugging-port=0",
];

const chromiumPresent = await Deno.stat(CHROMIUM).then(() => true, () => false);
const inCi = Deno.env.get("CI") === "true";
if (!chromiumPresent && !inCi) {
  console.warn(
    `\n*** REPORT BROWSER TEST SKIPPED: ${CHROMIUM} is missing (apt-get install chromium). ` +
      "With CI=true this is a failure. ***\n",
  );
}

const figures = (v: number): DetectionFigures => ({
  rocAuc: v,
  averagePrecision: v / 2,
  iouAuc: v / 4,
  aupro: v / 3,
  imageAuroc: v,
  f1: v / 2,
  f1Threshold: 0.4,
  undefinedReasons: [],
});

/** A report of one class with every kind of result, and the PNG files it embeds. */
async function handMadeReport(out: string) {
  const png = (channels: number, height: number, width: number) => {
    const image = createImage(channels, height, width);
    image.data.forEach((_, i) => (image.data[i] = (i % 97) / 96));
    return encodePng(image);
  };
  const files: Record<string, Uint8Array> = {
    "fig4/input.png": png(1, 64, 64),
    "fig4/exact.png": png(1, 64, 64),
    "fig4/naive.png": png(1, 64, 64),
    ...Object.fromEntries(CONFIGURATIONS.map((c) => [`screw-${c}-s1/examples.png`, png(3, 128, 640)])),
  };
  for (const [name, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(out, "runs", name, ".."), { recursive: true });
    await Deno.writeFile(join(out, "runs", name), bytes);
  }
  const configurations: ConfigurationResult[] = CONFIGURATIONS.map((configuration, k) => ({
    kind: "configuration",
    seconds: 1,
    id: `screw-${configuration}-s1`,
    className: "screw",
    configuration,
    seed: 1,
    curve: [1, 2, 3].map((epoch) => ({
      epoch,
      step: 10 * epoch,
      trainLoss: 0.1 / epoch,
      valLoss: 0.12 / epoch,
    })),
    mse255: 70 - k,
    ssim: 0.7 + k / 100,
    detection: { ssim: figures(0.8 + k / 50), l2: figures(0.7 + k / 50) },
    imagesPerSecond: 30,
    trainSeconds: 100,
    exampleGrid: "examples.png",
  }));
  const pretrain: PretrainResult = {
    kind: "pretrain",
    seconds: 30,
    id: "pretrain-screw-s1",
    className: "screw",
    seed: 1,
    lr: 1e-3,
    steps: 100,
    before: { circularStdDegrees: 52, meanResultantLength: 0.02, meanDegrees: 10 },
    after: { circularStdDegrees: 9, meanResultantLength: 0.93, meanDegrees: 80 },
    curve: [{ epoch: 1, step: 100, trainLoss: 0.3, valLoss: 0.3 }],
    weights: "stn.safetensors",
  };
  const histogram = [0, 4, 8].map((from) => ({ from, to: from + 4, count: 100 - from }));
  const fig4: Fig4Result = {
    kind: "fig4",
    seconds: 1,
    id: "fig4",
    className: "screw",
    angle: 45,
    input: "input.png",
    samplers: [
      { sampler: "exact", meanError255: 3.5, maxError255: 30, histogram, differenceImage: "exact.png" },
      { sampler: "naive", meanError255: 21, maxError255: 120, histogram, differenceImage: "naive.png" },
    ],
  };
  const angles = [0, 30, 60, 90];
  const fig7: Fig7Result = {
    kind: "fig7",
    seconds: 1,
    id: "fig7-screw",
    className: "screw",
    samples: [{ name: "sample 1", angles, losses: angles.map((a) => 1 + Math.cos((a * Math.PI) / 90)) }],
  };
  const summary: ProtocolSummary = {
    preset: "test",
    device: "cpu",
    classes: ["screw"],
    seeds: [1],
    startedAt: "2026-01-01T00:00:00Z",
    wallSeconds: 60,
    settings: { samples: 10 },
  };
  return await writeReport(out, summary, [...configurations, pretrain, fig4, fig7]);
}

type Event = { method: string; params: Record<string, unknown> };

/** The DevTools protocol over a WebSocket: numbered commands answered by id, everything else an event. */
class DevTools {
  #next = 1;
  #pending = new Map<number, PromiseWithResolvers<Record<string, unknown>>>();
  #socket: WebSocket;

  private constructor(socket: WebSocket, onEvent: (event: Event) => void) {
    this.#socket = socket;
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      const waiting = this.#pending.get(data.id);
      if (!waiting) return onEvent(data);
      this.#pending.delete(data.id);
      if (data.error) waiting.reject(new Error(`DevTools: ${data.error.message}`));
      else waiting.resolve(data.result);
    };
  }

  static async connect(url: string, onEvent: (event: Event) => void): Promise<DevTools> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot connect to chromium's DevTools at ${url}`));
    });
    return new DevTools(socket, onEvent);
  }

  // deno-lint-ignore no-explicit-any
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.#next++;
    const reply = Promise.withResolvers<Record<string, unknown>>();
    this.#pending.set(id, reply);
    this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    return reply.promise;
  }

  async close(): Promise<void> {
    if (this.#socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => (this.#socket.onclose = resolve));
    this.#socket.close();
    await closed;
  }
}

/** Reads chromium's stderr to its end, resolving `address` once the DevTools address is printed. */
async function drainStderr(stream: ReadableStream<Uint8Array>, address: PromiseWithResolvers<string>) {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const found = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (found) address.resolve(found[1]);
  }
  address.reject(new Error(`chromium exited without a DevTools address; its stderr:\n${text}`));
}

/** Problems the page reports: console errors and assertions, uncaught exceptions, error log entries. */
function problemIn({ method, params }: Event): string | null {
  if (method === "Runtime.consoleAPICalled" && ["error", "assert"].includes(params.type as string)) {
    return `console.${params.type}: ${JSON.stringify(params.args)}`;
  }
  if (method === "Runtime.exceptionThrown") return `exception: ${JSON.stringify(params.exceptionDetails)}`;
  const entry = params.entry as { level: string; text: string } | undefined;
  if (method === "Log.entryAdded" && entry?.level === "error") return `log: ${entry.text}`;
  return null;
}

Deno.test({
  name: "report.html opens in headless Chromium with no console error and no network request",
  ignore: !chromiumPresent && !inCi,
  async fn() {
    assert.ok(chromiumPresent, `${CHROMIUM} is missing, and CI=true requires it (apt-get install chromium)`);
    const dir = await Deno.makeTempDir({ prefix: "report_browser_" });
    const { html } = await handMadeReport(join(dir, "report"));
    const browser = new Deno.Command(CHROMIUM, {
      args: [...FLAGS, `--user-data-dir=${join(dir, "profile")}`, "about:blank"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const address = Promise.withResolvers<string>();
    const stderr = drainStderr(browser.stderr, address);
    const problems: string[] = [], requests: string[] = [];
    const loaded = Promise.withResolvers<void>();
    let devtools: DevTools | null = null;
    try {
      devtools = await DevTools.connect(await address.promise, (event) => {
        if (event.method === "Page.loadEventFired") loaded.resolve();
        if (event.method === "Network.requestWillBeSent") {
          requests.push((event.params.request as { url: string }).url);
        }
        const problem = problemIn(event);
        if (problem) problems.push(problem);
      });
      const { targetId } = await devtools.send("Target.createTarget", { url: "about:blank" });
      const { sessionId } = await devtools.send("Target.attachToTarget", { targetId, flatten: true });
      for (const domain of ["Page", "Runtime", "Log", "Network"]) {
        await devtools.send(`${domain}.enable`, {}, sessionId);
      }
      const viewport = { width: 1280, height: 1600 };
      await devtools.send("Emulation.setDeviceMetricsOverride", {
        ...viewport,
        deviceScaleFactor: 1,
        mobile: false,
      }, sessionId);
      const page = new URL(`file://${await Deno.realPath(html)}`).href;
      await devtools.send("Page.navigate", { url: page }, sessionId);
      await loaded.promise;
      const counted = await devtools.send("Runtime.evaluate", {
        expression:
          `JSON.stringify(["table", "svg", "img"].map((tag) => document.querySelectorAll(tag).length))`,
        returnByValue: true,
      }, sessionId);
      const [tables, svgs, images] = JSON.parse(counted.result.value);
      // The claims, sampler, pre-training, reconstruction, detection, ranking and speed tables; the four
      // charts (Fig. 3, Fig. 4, Fig. 7, pre-training) and their inner SVGs; Fig. 4's three images and four grids.
      assert.ok(tables >= 7, `${tables} tables`);
      assert.ok(svgs >= 4, `${svgs} svg elements`);
      assert.equal(images, 7);
      const shot = await devtools.send("Page.captureScreenshot", { format: "png" }, sessionId);
      const screenshot = join(dir, "report.png");
      await Deno.writeFile(screenshot, Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0)));
      const pageProblems = [...problems], pageRequests = [...requests];
      // The probes see what they must catch: a console error and a request to the network, made on purpose.
      await devtools.send("Runtime.evaluate", {
        expression: `console.error("probe"); fetch("http://127.0.0.1:9/probe").catch(() => 0)`,
        awaitPromise: true,
      }, sessionId);
      await devtools.send("Browser.close");

      assert.deepEqual(pageProblems, []);
      assert.deepEqual(pageRequests.filter((url) => !/^(file|data):/.test(url)), []);
      assert.ok(pageRequests.includes(page), `the page itself is a request: ${pageRequests.slice(0, 3)}`);
      assert.match(problems.slice(pageProblems.length).join("\n"), /console\.error: .*probe/);
      assert.deepEqual(requests.slice(pageRequests.length), ["http://127.0.0.1:9/probe"]);
      if (Deno.env.get("REPORT_SCREENSHOT")) {
        await Deno.copyFile(screenshot, Deno.env.get("REPORT_SCREENSHOT")!);
      }
      const png = await readImageFile(screenshot);
      assert.deepEqual([png.width, png.height], [viewport.width, viewport.height]);
      // Non-trivial: text, tables and charts give many grey levels, a blank page one.
      const levels = new Set(Array.from(png.data, (v) => Math.round(v * 255)));
      assert.ok(levels.size > 50, `${levels.size} distinct values in the screenshot`);
    } finally {
      await devtools?.close();
      if (!devtools) browser.kill();
      await browser.status;
      await stderr.catch(() => {});
    }
    await Deno.remove(dir, { recursive: true });
  },
});
