// Calibration metrics: one implementation for the backend, the Framework data loaders and the
// site (bundled for the browser). Pure TypeScript over typed arrays; no Node imports.
// Conventions and definitions: backend/metrics/README.md.

export * from "./validate.js";
export * from "./binning.js";
export * from "./calibration.js";
export * from "./scores.js";
export * from "./classwise.js";
export * from "./smece.js";
export * from "./selective.js";
export * from "./temperature.js";
export * from "./random.js";
export * from "./bootstrap.js";
export * from "./summary.js";
export * from "./sql/index.js";
