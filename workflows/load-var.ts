import type { LoadVarStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';
import { withLocals } from './locals';

/** `load_var`: reads a file from an artifact into a local var, ((.:name)), for later steps. */
export async function runLoadVar(ctx: BuildContext, step: LoadVarStep, frame: Frame): Promise<boolean> {
  const value = await ctx.acts.loadVar.executeWithOptions({ summary: `load_var ${step.var} · ${step.id}` }, [
    {
      buildId: ctx.buildId,
      step: withLocals({ ...step, hooks: undefined, across: undefined }, frame),
      artifacts: frame.scope.allArtifacts(),
    },
  ]);
  frame.scope.setLocal(step.var, value);
  return true;
}
