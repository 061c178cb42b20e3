// The engine's typed facade: everything backend/ and the CLI need from native/.
export { addon, engineInfo, ncclStatus, setThreads, type EngineInfo, type NcclStatus } from "./addon.js";
export { resolveDevice, type Device } from "./device.js";
export { linearCrossEntropy, type LinearCrossEntropyOptions, type LinearCrossEntropyResult, type Reduction } from "./loss.js";
export { matrix, toBf16, fromBf16, type Matrix, type Dtype } from "./tensor.js";
export { GptModel, DEFAULT_HEAD_WORKSPACE_BYTES, validateModelConfig, countParams, type ModelConfig, type Arch, type LlamaConfig, type LlamaOptions, type RopeType, type MlpAct, type GptTensorName, type LlamaTensorName, type ModelOptions, type Precision, type TensorInfo, type Batch, type LossOptions, type StepResult, type AdamWOptions, type EvalOptions, type EvalResult, type BufferName } from "./model.js";
export { DeviceArray, deviceMatrix, linearCrossEntropyDevice, cudaAvailable, cudaSynchronize, cudaMemoryInfo, cudaStats, cudaReleaseScratch, planLinearCrossEntropyCuda, type CudaDeviceDesc, type CudaLossPlan, type CudaLossPlanOptions, type DeviceDtype, type DeviceMatrix, type DeviceLossOptions, type DeviceLossOutputs, type DeviceLossResult, type CudaStats } from "./cuda.js";
export { tensorTable } from "./layout.js";
