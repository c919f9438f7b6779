/**
 * Every device the project runs on. The CPU reference is part of the engine; each other backend lives
 * in its own folder and registers itself there (`registerBackend` in `engine/device.ts`). A new backend
 * is a new folder and one line here.
 */
import "./webgpu/webgpu.ts";
import "./wasm/backend.ts";
