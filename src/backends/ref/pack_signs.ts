/**
 * Sign bits for flip metrics. Bit convention (the same everywhere in onebit): bit 1 means −1,
 * i.e. x < 0; x = 0 counts as +1 (bit 0). Bits are packed LSB-first, 32 per Uint32 word; the tail
 * of the last word is zero.
 */
export function packSigns(x: Float32Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(x.length / 32));
  for (let i = 0; i < x.length; i++) if (x[i]! < 0) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

export function popcountXor(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    let v = (a[i]! ^ b[i]!) >>> 0;
    v = v - ((v >>> 1) & 0x55555555);
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    n += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
  }
  return n;
}
