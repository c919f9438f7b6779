/**
 * The README's commands need nothing exported: without DENO_WEBGPU_BACKEND and XDG_RUNTIME_DIR the
 * WebGPU backend sets both before its first adapter request, says which adapter it took in one line,
 * and Mesa has nothing to complain about. What the user exports wins.
 */
import assert from "node:assert/strict";
import { TEST_DEVICES } from "./devices.ts";
import { defaultBackend, vulkanDrivers } from "../webgpu/environment.ts";

const webgpu = TEST_DEVICES.find((d) => d.name === "webgpu");
const ROOT = new URL("..", import.meta.url);

/** Creates the webgpu device in a fresh process with `env` instead of the WebGPU variables. */
async function createInFreshProcess(env: Record<string, string>) {
  const code = `import "${new URL("backends.ts", ROOT)}";
import { getDevice } from "${new URL("engine/device.ts", ROOT)}";
await getDevice("webgpu");
const read = (name) => Deno.env.get(name) ?? null;
console.log(JSON.stringify({ backend: read("DENO_WEBGPU_BACKEND"), runtimeDir: read("XDG_RUNTIME_DIR") }));`;
  const inherited = Deno.env.toObject();
  for (const name of ["DENO_WEBGPU_BACKEND", "XDG_RUNTIME_DIR", "DENO_WEBGPU_ADAPTER_ANNOUNCED"]) {
    delete inherited[name];
  }
  const { code: status, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-webgpu", code],
    cwd: ROOT.pathname,
    clearEnv: true,
    env: { ...inherited, ...env },
  }).output();
  const text = new TextDecoder();
  const err = text.decode(stderr);
  assert.equal(status, 0, err);
  return { ...JSON.parse(text.decode(stdout)), err } as {
    backend: string | null;
    runtimeDir: string;
    err: string;
  };
}

Deno.test("the default backend is vulkan on Linux with a Vulkan driver, and wgpu's own choice otherwise", () => {
  assert.equal(defaultBackend("linux", ["lvp_icd.x86_64.json"]).backend, "vulkan");
  assert.match(
    defaultBackend("linux", ["lvp_icd.x86_64.json"]).why,
    /unset; Vulkan drivers installed: lvp_icd/,
  );
  assert.equal(defaultBackend("linux", []).backend, undefined);
  assert.equal(defaultBackend("darwin", ["MoltenVK_icd.json"]).backend, undefined);
});

Deno.test(
  "with nothing exported: the backend and a private runtime dir are set, one line names the adapter",
  {
    ignore: !webgpu || webgpu.ignore,
  },
  async () => {
    const { backend, runtimeDir, err } = await createInFreshProcess({});
    const vulkan = Deno.build.os === "linux" && vulkanDrivers().length > 0;
    assert.equal(backend, vulkan ? "vulkan" : null);
    if (Deno.build.os === "linux") {
      const info = Deno.statSync(runtimeDir);
      assert.ok(info.isDirectory && info.uid === Deno.uid() && (info.mode! & 0o777) === 0o700, runtimeDir);
    }
    assert.doesNotMatch(err, /XDG_RUNTIME_DIR is invalid/);
    const lines = err.split("\n").filter((line) => line.startsWith("webgpu: adapter "));
    assert.equal(lines.length, 1, err);
    if (vulkan) assert.match(lines[0], / via vulkan \(DENO_WEBGPU_BACKEND unset; Vulkan drivers installed: /);
  },
);

Deno.test("an exported DENO_WEBGPU_BACKEND and XDG_RUNTIME_DIR are kept", {
  ignore: !webgpu || webgpu.ignore || Deno.build.os !== "linux",
}, async () => {
  const mine = await Deno.makeTempDir({ prefix: "xdg-" });
  const { backend, runtimeDir, err } = await createInFreshProcess({
    DENO_WEBGPU_BACKEND: "vulkan",
    XDG_RUNTIME_DIR: mine,
  });
  assert.deepEqual([backend, runtimeDir], ["vulkan", mine]);
  assert.match(err, /^webgpu: adapter .* via vulkan \(DENO_WEBGPU_BACKEND, exported\)$/m);
  await Deno.remove(mine);
});
