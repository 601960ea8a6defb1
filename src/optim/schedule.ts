import { fail } from '../core/errors.js';
import { checkNumber } from './optimizer.js';

/**
 * A learning-rate schedule as a pure function of progress: lr(step) = baseLr · factor(step, totalSteps)
 * (steps count from 0). No state beyond the step counter, so resuming needs nothing extra;
 * `toJSON()` describes it and `scheduleFromJSON` rebuilds it.
 */
export interface LrSchedule {
  factor(step: number, totalSteps: number): number;
  toJSON(): ScheduleJSON;
}

/** The JSON form of every schedule. */
export type ScheduleJSON =
  | { kind: 'constant' }
  | { kind: 'cosine'; minFactor: number }
  | { kind: 'linear' }
  | { kind: 'step'; stepSize: number; gamma: number }
  | { kind: 'warmup'; steps: number; inner: ScheduleJSON };

export const SCHEDULE_KINDS = ['constant', 'cosine', 'linear', 'step', 'warmup'] as const;

function checkProgress(what: string, step: number, totalSteps: number): void {
  if (!Number.isInteger(step) || step < 0) fail(what, 'step to be an integer ≥ 0', `${step}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) fail(what, 'totalSteps to be an integer ≥ 1', `${totalSteps}`);
}

function checkPositiveInt(what: string, name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(what, `${name} to be an integer ≥ 1`, JSON.stringify(v) ?? 'undefined');
  return v;
}

/** factor = 1 at every step. */
export function constantLr(): LrSchedule {
  return {
    factor: (step, total) => (checkProgress('constantLr', step, total), 1),
    toJSON: () => ({ kind: 'constant' }),
  };
}

/**
 * Cosine annealing from 1 to minFactor over totalSteps:
 * factor = minFactor + (1 − minFactor)·(1 + cos(π·min(step, T)/T))/2.
 */
export function cosineLr(opts: { minFactor?: number } = {}): LrSchedule {
  const minFactor = checkNumber('cosineLr', 'minFactor', opts.minFactor ?? 0, 0);
  if (minFactor > 1) fail('cosineLr', 'minFactor ≤ 1', `${minFactor}`);
  return {
    factor(step, total) {
      checkProgress('cosineLr', step, total);
      return minFactor + ((1 - minFactor) * (1 + Math.cos((Math.PI * Math.min(step, total)) / total))) / 2;
    },
    toJSON: () => ({ kind: 'cosine', minFactor }),
  };
}

/** Linear decay to 0 at totalSteps (as ReActNet): factor = max(0, 1 − step/T). */
export function linearLr(): LrSchedule {
  return {
    factor(step, total) {
      checkProgress('linearLr', step, total);
      return Math.max(0, 1 - step / total);
    },
    toJSON: () => ({ kind: 'linear' }),
  };
}

/** Step decay: factor = gamma^⌊step / stepSize⌋ (stepSize counted in optimizer steps). */
export function stepLr(opts: { stepSize: number; gamma?: number }): LrSchedule {
  const stepSize = checkPositiveInt('stepLr', 'stepSize', opts?.stepSize);
  const gamma = checkNumber('stepLr', 'gamma', opts.gamma ?? 0.1, 0, true);
  return {
    factor(step, total) {
      checkProgress('stepLr', step, total);
      return gamma ** Math.floor(step / stepSize);
    },
    toJSON: () => ({ kind: 'step', stepSize, gamma }),
  };
}

/**
 * Linear warm-up over the first W = `steps` steps, then `inner` on the remaining ones:
 *   step < W:  factor = (step + 1)/W · inner.factor(0, T − W)
 *   step ≥ W:  factor = inner.factor(step − W, T − W)
 * (T − W is taken as at least 1, so a warm-up as long as training still works.)
 */
export function warmup(inner: LrSchedule, opts: { steps: number }): LrSchedule {
  if (!inner || typeof inner.factor !== 'function') fail('warmup', 'an inner LrSchedule', `${inner}`);
  const steps = checkPositiveInt('warmup', 'steps', opts?.steps);
  return {
    factor(step, total) {
      checkProgress('warmup', step, total);
      const rest = Math.max(1, total - steps);
      return step < steps ? ((step + 1) / steps) * inner.factor(0, rest) : inner.factor(step - steps, rest);
    },
    toJSON: () => ({ kind: 'warmup', steps, inner: inner.toJSON() }),
  };
}

/** Rebuild a schedule from its `toJSON()` form; an unknown kind fails with the list of valid kinds. */
export function scheduleFromJSON(json: unknown): LrSchedule {
  const j = json as Partial<Record<string, unknown>> | null;
  const kind = j && typeof j === 'object' ? j.kind : undefined;
  switch (kind) {
    case 'constant':
      return constantLr();
    case 'cosine':
      return cosineLr({ minFactor: j!.minFactor as number });
    case 'linear':
      return linearLr();
    case 'step':
      return stepLr({ stepSize: j!.stepSize as number, gamma: j!.gamma as number });
    case 'warmup':
      return warmup(scheduleFromJSON(j!.inner), { steps: j!.steps as number });
    default:
      return fail('scheduleFromJSON', `a schedule kind among ${SCHEDULE_KINDS.join(', ')}`, JSON.stringify(kind) ?? 'no kind');
  }
}
