/**
 * The two variables Deno's WebGPU reads from the environment, given defaults before the first adapter
 * is requested, so that `deno task test` and `deno task reproduce` need nothing exported.
 *
 * - DENO_WEBGPU_BACKEND: which graphics APIs wgpu starts. Unset, it starts all of them (Vulkan and GL
 *   on Linux) and takes the best adapter. Where a Vulkan driver is installed the default here is
 *   `vulkan`: on lavapipe wgpu takes Vulkan anyway, but starting GL as well slows each worker's first
 *   adapter request (median 135 ms against 92 ms, 5 runs each), and GL's adapter is the weaker one
 *   (16 storage buffers per stage instead of 32, two features fewer) and by far the slowest to
 *   compile: tests/webgpu_runtime_test.ts took 199 CPU-seconds with an empty Mesa shader cache,
 *   against 10-14 on Vulkan (3 on either once the cache is warm).
 * - XDG_RUNTIME_DIR: Mesa's Vulkan driver prints "XDG_RUNTIME_DIR is invalid or not set" without one.
 *   The default is a private folder in the temporary directory.
 *
 * Deno reads both from the process environment when a worker requests its first adapter, so
 * `Deno.env.set` before that takes effect (measured: DENO_WEBGPU_BACKEND=metal set this way leaves
 * Linux with no adapter, =gl gives the GL adapter's limits, and Mesa's message goes away).
 *
 * Neither variable costs compute time. With lavapipe (Mesa 22.3, 2 cores), webgpu_runtime_test.ts took
 * 2.3-3.3 CPU-seconds in each of the four combinations of set and unset with a warm Mesa shader cache,
 * and 10.3-13.8 in each with an empty one: the first compile of each WGSL pipeline is the cost.
 */

/** The choice made for this process, and why: one line for the adapter message. */
export interface WebGPUEnvironment {
  backend: string | undefined;
  why: string;
}

let chosen: WebGPUEnvironment | undefined;

/** Where the Vulkan loader looks for driver manifests on Linux (XDG defaults included). */
function vulkanManifestDirs(): string[] {
  const dataDirs = (Deno.env.get("XDG_DATA_DIRS") || "/usr/local/share:/usr/share").split(":");
  const configDirs = (Deno.env.get("XDG_CONFIG_DIRS") || "/etc/xdg").split(":");
  return [...configDirs, "/etc", ...dataDirs].map((dir) => `${dir}/vulkan/icd.d`);
}

/** The Vulkan driver manifests installed here (lvp_icd.x86_64.json is Mesa's lavapipe). */
export function vulkanDrivers(): string[] {
  const listed = Deno.env.get("VK_DRIVER_FILES") ?? Deno.env.get("VK_ICD_FILENAMES");
  if (listed) return listed.split(":").filter((f) => f !== "").map((f) => f.split("/").pop()!);
  const found = new Set<string>();
  for (const dir of vulkanManifestDirs()) {
    try {
      for (const entry of Deno.readDirSync(dir)) if (entry.name.endsWith(".json")) found.add(entry.name);
    } catch {
      // absent or unreadable: the loader skips it too
    }
  }
  return [...found].sort();
}

/** The backend to set when DENO_WEBGPU_BACKEND is unset: vulkan where a Vulkan driver is installed. */
export function defaultBackend(
  os: string,
  drivers: string[],
): WebGPUEnvironment {
  if (os === "linux" && drivers.length > 0) {
    return {
      backend: "vulkan",
      why: `via vulkan (DENO_WEBGPU_BACKEND unset; Vulkan drivers installed: ${drivers.join(", ")})`,
    };
  }
  return { backend: undefined, why: "via wgpu's choice (DENO_WEBGPU_BACKEND unset, no Vulkan driver found)" };
}

/** A private XDG_RUNTIME_DIR: ours, mode 0700, reused across runs; a fresh one if that is not safe. */
function privateRuntimeDir(): string {
  const base = Deno.env.get("TMPDIR") || "/tmp";
  const dir = `${base}/deno-webgpu-runtime-${Deno.uid()}`;
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const info = Deno.statSync(dir);
  const ours = info.isDirectory && info.uid === Deno.uid() && ((info.mode ?? 0) & 0o077) === 0;
  return ours ? dir : Deno.makeTempDirSync({ prefix: "deno-webgpu-runtime-" });
}

/**
 * Sets DENO_WEBGPU_BACKEND and XDG_RUNTIME_DIR where they are unset; call before the first
 * requestAdapter. What the user exported always wins.
 */
export function prepareWebGPUEnvironment(): WebGPUEnvironment {
  if (chosen) return chosen;
  try {
    const exported = Deno.env.get("DENO_WEBGPU_BACKEND");
    chosen = exported
      ? { backend: exported, why: `via ${exported} (DENO_WEBGPU_BACKEND, exported)` }
      : defaultBackend(Deno.build.os, Deno.build.os === "linux" ? vulkanDrivers() : []);
    if (!exported && chosen.backend) Deno.env.set("DENO_WEBGPU_BACKEND", chosen.backend);
    if (Deno.build.os === "linux" && !Deno.env.get("XDG_RUNTIME_DIR")) {
      Deno.env.set("XDG_RUNTIME_DIR", privateRuntimeDir());
    }
  } catch (e) {
    // Without --allow-env or --allow-read, leave the environment as it is.
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) throw e;
    chosen = {
      backend: undefined,
      why: `via wgpu's choice (environment not readable: ${(e as Error).message})`,
    };
  }
  return chosen;
}

/**
 * One line naming the adapter, printed once per process (Deno's test runner gives every test file its
 * own worker, each of which creates its own device; the environment is the process's).
 */
export function announceAdapter(adapter: string, print: (line: string) => void = console.error): void {
  const said = "DENO_WEBGPU_ADAPTER_ANNOUNCED";
  try {
    if (Deno.env.get(said)) return;
    Deno.env.set(said, "1");
  } catch {
    // without --allow-env every worker says it
  }
  print(`webgpu: adapter ${adapter} ${(chosen ?? prepareWebGPUEnvironment()).why}`);
}
