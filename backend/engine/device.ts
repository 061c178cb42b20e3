// Device choice: 'auto' takes CUDA when the engine was built with it and sees a GPU.
import { engineInfo } from "./addon.js";

export type Device = "cpu" | "cuda" | "auto";

export function resolveDevice(device: Device): "cpu" | "cuda" {
  if (device === "cpu") return "cpu";
  if (device !== "cuda" && device !== "auto") throw new TypeError(`device must be 'cpu', 'cuda' or 'auto' (got ${String(device)})`);
  const info = engineInfo();
  const usable = info.cudaBuilt && info.cudaDevices > 0;
  if (device === "auto") return usable ? "cuda" : "cpu";
  if (!usable) throw new Error(`device 'cuda' is not available: ${info.cudaMessage}`);
  return "cuda";
}
