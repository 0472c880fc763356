import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { ServiceLogOffsets, ServiceRef } from '../activities/types';
import { serviceHost, type ServiceAddress } from '../common/services';
import type { ServiceSpec, Step } from '../schemas/compiled';
import { messageOf } from './attempts';
import { Compensation } from './compensation';
import { passThrough, StepError, type BuildContext, type Frame } from './context';
import { withLocals } from './locals';
import { credentialsPipeline, redactedValues } from './credentials';

/** The status tree id of a step's service. */
export function serviceId(stepId: string, name: string): string {
  return `${stepId}.services.${name}`;
}

function display(addr: ServiceAddress): string {
  const port = addr.primaryPort === undefined ? undefined : addr.ports[addr.primaryPort];
  return port === undefined ? addr.host : `${addr.host}:${port}`;
}

/**
 * `services:`: starts the step's services, waits until all are ready, runs the step (all its
 * attempts) with their addresses in scope, and stops them when the step ends, however it
 * ends. Inside `across` each iteration gets its own services; a `do` or `in_parallel` shares
 * its services with every nested step. A service that cannot get ready errors the step.
 */
export function withServices(ctx: BuildContext, step: Step, frame: Frame, run: (frame: Frame) => Promise<boolean>): Promise<boolean> {
  const specs = step.services;
  if (!specs || specs.length === 0) return passThrough(ctx, () => run(frame));
  return runWithServices(ctx, step, specs, frame, run);
}

async function runWithServices(
  ctx: BuildContext,
  step: Step,
  specs: ServiceSpec[],
  frame: Frame,
  run: (frame: Frame) => Promise<boolean>,
): Promise<boolean> {
  // Addresses first, so steps can name the services (and the local runtime's services each
  // other) in ((.svc:...)) before a start has returned the real address.
  const siblings = specs.map((s) => s.name);
  const scope: Record<string, ServiceAddress> = { ...frame.services };
  for (const spec of specs) {
    const ports = Object.fromEntries((spec.config?.ports ?? []).map((p) => [p.name, p.number]));
    const names = Object.keys(ports);
    scope[spec.name] = {
      name: spec.name,
      host: serviceHost(ctx.buildId, ctx.servicesAllocated++),
      ports,
      primaryPort: names.includes('default') ? 'default' : names[0],
    };
  }

  const teardown = new Compensation();
  try {
    // Services start at once; the first that cannot get ready stops the others' waiting, and
    // every start has ended (so its teardown sees its process) before the step errors.
    const starting = new CancellationScope();
    const started = await starting.run(() =>
      Promise.allSettled(
        specs.map((spec) =>
          startService(ctx, step, frame, spec, scope, siblings, teardown).catch((err: unknown) => {
            starting.cancel();
            throw err;
          }),
        ),
      ),
    );
    const errors = started.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (errors.length > 0) {
      const err = errors.find((e) => !isCancellation(e)) ?? errors[0];
      if (isCancellation(err)) throw err;
      ctx.status.finish(step.id, 'errored', { message: messageOf(err) });
      throw err instanceof StepError ? err : new StepError(messageOf(err));
    }
    return await run({ ...frame, services: scope });
  } finally {
    await teardown.unwind();
  }
}

async function startService(
  ctx: BuildContext,
  step: Step,
  frame: Frame,
  spec: ServiceSpec,
  scope: Record<string, ServiceAddress>,
  siblings: string[],
  teardown: Compensation,
): Promise<void> {
  const id = serviceId(step.id, spec.name);
  const ref: ServiceRef = {
    buildId: ctx.buildId,
    runId: ctx.runId,
    scopeStepId: step.id,
    runKey: frame.runKey,
    name: spec.name,
    redact: redactedValues(ctx.credentials, frame),
    varSources: ctx.credentials?.varSources,
  };
  const label = `service ${spec.name} · ${step.id}`;
  let failed = false;
  let supervised: Promise<void> | undefined;
  const fail = (message: string) => {
    failed = true;
    ctx.status.service(id, spec.name, step.id, 'failed', { message });
  };

  // Registered before the start, whose activity may have started the process even if it
  // then fails or is cancelled; stopping a service that never started is a no-op.
  teardown.push(`service ${spec.name}`, async () => {
    if (!failed) ctx.status.service(id, spec.name, step.id, 'stopping');
    await ctx.acts.stopService.executeWithOptions({ summary: `stop ${label}` }, [{ ...ref, gracePeriodMs: spec.gracePeriodMs }]);
    // The supervisor sees the exit and sends the service's last output before it returns.
    await supervised;
    if (!failed) ctx.status.service(id, spec.name, step.id, 'stopped');
  });

  ctx.status.service(id, spec.name, step.id, 'starting', { address: display(scope[spec.name]) });
  let resolved: ServiceSpec;
  try {
    resolved = withLocals(spec, frame);
  } catch (err) {
    fail(messageOf(err));
    throw new StepError(`service ${spec.name}: ${messageOf(err)}`);
  }
  let offsets: ServiceLogOffsets;
  let secrets: Pick<ServiceRef, 'plan' | 'credentials'> = {};
  try {
    // ((.svc:...)) refs in the spec are the runtime's to fill in: where the scope's services
    // answer (a kubernetes Service's DNS name) is not known here before they exist. An
    // unresolvable ref fails the activity without retries (ServiceFailed).
    const started = await ctx.acts.startService.executeWithOptions({ summary: label }, [
      {
        ...ref,
        plan: credentialsPipeline(ctx),
        spec: resolved,
        address: scope[spec.name],
        scope,
        siblings,
        artifacts: frame.scope.allArtifacts(),
      },
    ]);
    scope[spec.name] = started.address;
    // The credential refs the start used (never their values): probe and supervise look them up to redact them.
    if (started.credentials) secrets = { plan: credentialsPipeline(ctx), credentials: started.credentials };
    ctx.status.service(id, spec.name, step.id, 'probing', { address: display(started.address) });
    offsets = await ctx.acts.probeService.executeWithOptions({ summary: `probe ${label}` }, [
      { ...ref, ...secrets, address: started.address, offsets: started.offsets },
    ]);
  } catch (err) {
    if (isCancellation(err)) ctx.status.service(id, spec.name, step.id, 'stopping');
    else fail(messageOf(err));
    throw err;
  }
  ctx.status.service(id, spec.name, step.id, 'ready');
  // Not cancellable: an abort must not stop the log stream before the teardown stops the service.
  supervised = CancellationScope.nonCancellable(() =>
    ctx.acts.superviseService.executeWithOptions({ summary: `logs of ${label}` }, [
      { ...ref, ...secrets, offsets, gracePeriodMs: spec.gracePeriodMs },
    ]),
  ).then(
    (r) => {
      if (ctx.status.serviceState(id) === 'ready')
        fail(`exited${r.exitCode === undefined ? '' : ` with status ${r.exitCode}`} while the step was using it`);
    },
    (err: unknown) => fail(`lost its log stream: ${messageOf(err)}`),
  );
}
