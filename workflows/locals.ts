import { interpolateLocal } from '../schemas/interpolate';
import { StepError, type Frame } from './context';

/** Fills in ((.:name)) vars set by load_var and across; a missing one errors the step. */
export function withLocals<T>(value: T, frame: Frame): T {
  try {
    return interpolateLocal(value, frame.scope.allLocals()) as T;
  } catch (err) {
    throw new StepError((err as Error).message);
  }
}
