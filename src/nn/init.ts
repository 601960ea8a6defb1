import { rng } from '../core/rng.js';
import { Tensor } from '../core/tensor.js';

/**
 * PyTorch's default initialisation for Linear and Conv2d (kaiming_uniform with a = √5), i.e.
 * U(−1/√fan_in, 1/√fan_in) for weights and biases, drawn from the seeded process generator.
 */
export function uniformInit(shape: number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(Math.max(fanIn, 1));
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const r = rng();
  for (let i = 0; i < n; i++) data[i] = r.uniform(-bound, bound);
  return new Tensor(data, shape);
}
