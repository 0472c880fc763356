import type { ArtifactRef, Artifacts } from '../activities/types';
import type { Step } from '../schemas/compiled';

/** Reads every artifact: a config loaded from a file, or a name that is only known at run time. */
const ANY = '*';

/** A producer's outputs and the steps that may still read them. */
interface Held {
  refs: ArtifactRef[];
  names: string[];
  waiting: Set<string>;
}

/**
 * Releases a producer's artifacts once no step that may read them can still run, so that a
 * runtime holding them in a live object (the kubernetes runtime's producer pods) frees it
 * during the build instead of at its end.
 *
 * Which step reads what is read from the plan: a task's and its services' inputs (after
 * input_mapping), a `file:` config's artifact, `load_var`'s artifact, a task's `image:`.
 * A reader is done when its release point ends: the reader itself, or its outermost
 * enclosing `across` or `attempts`, which may run it again. Release points run at most once
 * per build, since no loop encloses them; and when a step ends, every release point inside
 * it has ended or will never run (a hook that was not needed). Readers whose names are only
 * known at run time (a `file:` config, a ((.:var)) in a name) read everything. `-o`
 * downloads are read when the build ends, so they are never released here.
 */
export class ArtifactReleaser {
  /** artifact name (or ANY) → release points of the steps that read it */
  private readonly readers = new Map<string, Set<string>>();
  /** step id → the release points inside it (itself included), for steps outside loops */
  private readonly inside = new Map<string, Set<string>>();
  private readonly ended = new Set<string>();
  private readonly held: Held[] = [];
  private readonly releases: Promise<unknown>[] = [];

  constructor(
    plan: Step,
    downloads: string[],
    private readonly release: (refs: ArtifactRef[], names: string[]) => Promise<unknown>,
  ) {
    this.walk(plan, undefined, []);
    for (const name of downloads) this.read(name, 'build end', []);
  }

  /** A step produced these outputs: they are released at once when nothing can read them. */
  produced(outputs: Artifacts): void {
    const names = Object.keys(outputs);
    if (names.length === 0) return;
    const waiting = new Set<string>();
    for (const name of [...names, ANY]) for (const point of this.readers.get(name) ?? []) if (!this.ended.has(point)) waiting.add(point);
    const held = { refs: Object.values(outputs), names, waiting };
    if (waiting.size === 0) this.start(held);
    else this.held.push(held);
  }

  /** A step ended (however it ended): the producers only it and its insides were waiting for are released. */
  stepEnded(stepId: string): void {
    const points = this.inside.get(stepId);
    if (!points) return;
    for (const point of points) this.ended.add(point);
    for (let i = this.held.length - 1; i >= 0; i--) {
      const held = this.held[i];
      for (const point of points) held.waiting.delete(point);
      if (held.waiting.size > 0) continue;
      this.held.splice(i, 1);
      this.start(held);
    }
  }

  /** Waits for the releases started so far (their failures are the runtime's to log). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.releases);
  }

  private start(held: Held): void {
    this.releases.push(this.release(held.refs, held.names));
  }

  /** `point` reads `name`; `outer` are the steps outside loops that contain it. */
  private read(name: string, point: string, outer: string[]): void {
    const key = name.includes('((') ? ANY : name;
    add(this.readers, key, point);
    for (const id of outer) add(this.inside, id, point);
  }

  /**
   * `loop`: the outermost `across`/`attempts` around the step, if any. `outer`: the steps
   * around it that run once per build (those outside any loop, and the outermost loop).
   */
  private walk(step: Step, loop: string | undefined, outer: string[]): void {
    const point = loop ?? (step.across || (step.attempts ?? 1) > 1 ? step.id : undefined);
    const chain = loop === undefined ? [...outer, step.id] : outer;
    const read = (name: string) => this.read(name, point ?? step.id, chain);
    for (const service of step.services ?? []) {
      if (!service.config) read(ANY);
      else for (const input of service.config.inputs) read(service.inputMapping[input.name] ?? input.name);
      if (service.file) read(artifactOf(service.file));
    }
    switch (step.kind) {
      case 'task':
        if (step.config) for (const input of step.config.inputs) read(step.inputMapping[input.name] ?? input.name);
        else read(ANY);
        if (step.file) read(artifactOf(step.file));
        if (step.image) read(step.image);
        break;
      case 'load_var':
        read(artifactOf(step.file));
        break;
      case 'set_pipeline':
        for (const file of [step.file, ...step.varFiles]) read(artifactOf(file));
        break;
      case 'put':
        // `all` and `detect` are known only at run time: treat them as reading anything.
        if (Array.isArray(step.inputs)) step.inputs.forEach(read);
        else read(ANY);
        break;
      case 'do':
      case 'in_parallel':
        for (const child of step.steps) this.walk(child, point, chain);
        break;
      case 'try':
        this.walk(step.step, point, chain);
        break;
    }
    for (const hook of Object.values(step.hooks ?? {})) if (hook) this.walk(hook, point, chain);
  }
}

function add(map: Map<string, Set<string>>, key: string, value: string): void {
  let values = map.get(key);
  if (!values) map.set(key, (values = new Set()));
  values.add(value);
}

/** The artifact a "<artifact>/<path>" file reference reads. */
function artifactOf(file: string): string {
  return file.split('/')[0];
}
