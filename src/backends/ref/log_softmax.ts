/** Reference log-softmax along the last axis of [rows, cols], max-subtracted for stability. */
export function logSoftmax(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) if (x[o + c]! > mx) mx = x[o + c]!;
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[o + c]! - mx);
    const lse = mx + Math.log(s);
    for (let c = 0; c < cols; c++) out[o + c] = x[o + c]! - lse;
  }
  return out;
}
