/**
 * Deployment: the eval-mode forms of the quantizers (forms.ts), the `.onebit` file format
 * (format.ts, docs/onebit-format.md) and the exporter from a trained model (export.ts). The
 * engine that runs `.onebit` files is src/infer/.
 */
export { activationForm, weightForm, nextUp32, nextDown32, type ActivationForm, type WeightForm } from './forms.js';
export { encodeOnebit, decodeOnebit, saveOnebit, readOnebit, ONEBIT_MAGIC, ONEBIT_VERSION, MAX_FILE_BYTES, MAX_JSON_BYTES } from './format.js';
export { exportGraph, exportModel, exportCheckpoint, packSigns, type ExportOptions } from './export.js';
