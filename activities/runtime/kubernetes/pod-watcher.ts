// One pod informer per runtime (= worker namespace), shared by every task and service it
// follows: a label-selected list, then one watch (client-node's ListWatch), instead of a watch
// per pod, so 200 parallel steps cost one watch connection. It runs while something follows a
// pod and a little after; an unreachable API server restarts it (a fresh list) with backoff,
// and followers error with APIUnreachable once it stays down longer than apiUnreachableMs.
import { StepErrored } from '../../errors';
import type { KubeApi } from './api';
import { k8s, type K8s, type V1Pod } from './client';
import { apiCode, apiMessage } from './errors';
import { LABELS, MANAGED_BY } from './pod';

export interface FollowHooks {
  signal?: AbortSignal;
  heartbeat?: () => void;
}

/** How often a follower beats and looks again at its pod's last state (deadlines such as unschedulable). */
const TICK_MS = 1000;
/** How long the informer outlives its last follower: consecutive steps share one list and watch. */
const IDLE_MS = 10_000;
/** Backoff of restarts after the informer's list or watch failed. */
const RESTART_MS = { first: 250, max: 4000 };

type Listener = (pod: V1Pod | undefined) => void;

interface Subscription {
  listener: Listener;
  /** the number of lists started before it subscribed: a later list without its pod means the pod is gone */
  lists: number;
}

export class PodInformer {
  private informer?: K8s.Informer<V1Pod> & K8s.ObjectCache<V1Pod>;
  /** a started informer's first list and watch; a new run after idling or a failure makes a new one */
  private started?: Promise<void>;
  /** pods followed now (by tasks and services) */
  private followers = 0;
  private idle?: NodeJS.Timeout;
  private restart?: NodeJS.Timeout;
  private restartDelay = RESTART_MS.first;
  private lists = 0;
  private readonly subs = new Map<string, Set<Subscription>>();
  /** watch connections open now (one while it runs; tests and bench read it) */
  watching = 0;
  /** since when the list or watch has failed without a successful one since, and the last error */
  private down?: { since: number; err: unknown };

  constructor(private readonly rt: KubeApi) {}

  /** the label selector of the pods the informer sees: every pod Causeway made in the namespace */
  static readonly selector = `${LABELS.managedBy}=${MANAGED_BY}`;

  /**
   * Follows one pod until `decide` returns a value (`decide(undefined)`: the pod is gone); a
   * throw from `decide` ends the follow with it. `initial` is the pod as the caller last read
   * it (a create's answer); without it, one GET gives the pod's latest state.
   */
  follow<T>(
    name: string,
    decide: (pod: V1Pod | undefined) => T | undefined,
    hooks: FollowHooks = {},
    initial?: V1Pod,
  ): Promise<T | 'aborted'> {
    if (hooks.signal?.aborted) return Promise.resolve('aborted');
    return new Promise<T | 'aborted'>((resolve, reject) => {
      let settled = false;
      /** the pod's state is known (given, read or told): the tick may look at it again */
      let known = initial !== undefined;
      let gone = false;
      let last: V1Pod | undefined = initial;
      // The informer's cache, a GET and the watch's events may arrive in any order: the newest state wins.
      const take = (pod: V1Pod | undefined) => {
        if (settled || gone) return;
        if (!pod) gone = true;
        else if (last && older(pod, last)) return;
        last = pod;
        known = true;
        consider();
      };
      const sub: Subscription = { lists: this.lists, listener: take };
      const finish = (end: () => void) => {
        if (settled) return;
        settled = true;
        clearInterval(tick);
        hooks.signal?.removeEventListener('abort', onAbort);
        this.unsubscribe(name, sub);
        end();
      };
      const consider = () => {
        try {
          const v = decide(last);
          if (v !== undefined) finish(() => resolve(v));
        } catch (err) {
          finish(() => reject(err));
        }
      };
      const onAbort = () => finish(() => resolve('aborted'));
      hooks.signal?.addEventListener('abort', onAbort, { once: true });
      const tick = setInterval(() => {
        hooks.heartbeat?.();
        if (this.down && Date.now() - this.down.since > this.rt.apiUnreachableMs) {
          const err = new StepErrored(
            `Kubernetes API server unreachable for ${Math.round((Date.now() - this.down.since) / 1000)}s while watching pod ${name}: ${apiMessage(this.down.err)}`,
            'APIUnreachable',
          );
          finish(() => reject(err));
        } else if (known) consider();
      }, TICK_MS);
      this.subscribe(name, sub);
      void (async () => {
        if (initial) consider();
        // A fresh GET: the cache of a running informer may not have the latest change yet.
        else {
          const read = await this.read(name, hooks.signal);
          if (read || !known) take(read);
        }
        await this.started;
        const cached = this.informer?.get(name, this.rt.namespace);
        if (cached) take(cached);
      })().catch((err: unknown) => finish(() => reject(err)));
    });
  }

  get following(): number {
    return this.followers;
  }

  /** Stops the informer now (worker shutdown); a later follow starts it again. */
  async stop(): Promise<void> {
    clearTimeout(this.idle);
    clearTimeout(this.restart);
    const informer = this.informer;
    this.informer = undefined;
    this.started = undefined;
    this.down = undefined;
    await informer?.stop();
  }

  /** One GET, retried while the server cannot be reached; undefined when the pod does not exist. */
  private async read(name: string, signal?: AbortSignal): Promise<V1Pod | undefined> {
    try {
      this.rt.calls.get++;
      return await this.rt.call('get pod', () => this.rt.core.readNamespacedPod({ name, namespace: this.rt.namespace }), signal);
    } catch (err) {
      if (apiCode(err) === 404) return undefined;
      throw err;
    }
  }

  private subscribe(name: string, sub: Subscription): void {
    let set = this.subs.get(name);
    if (!set) this.subs.set(name, (set = new Set()));
    set.add(sub);
    if (++this.followers === 1) {
      clearTimeout(this.idle);
      if (!this.informer) this.run();
    }
  }

  private unsubscribe(name: string, sub: Subscription): void {
    const set = this.subs.get(name);
    if (set?.delete(sub) && set.size === 0) this.subs.delete(name);
    if (--this.followers === 0) {
      this.idle = setTimeout(() => void this.stop(), IDLE_MS);
      this.idle.unref();
    }
  }

  private notify(name: string | undefined, pod: V1Pod | undefined): void {
    for (const sub of [...(this.subs.get(name ?? '') ?? [])]) sub.listener(pod);
  }

  /** Starts a fresh informer: a list (counted, its missing pods told to their followers), then a watch. */
  private run(): void {
    const { Watch, ListWatch } = k8s();
    const rt = this.rt;
    const inner = new Watch(rt.kc);
    // The library's Watch, with bookmarks, the server-side timeout and the runtime's counts.
    const watch = {
      watch: async (
        path: string,
        params: Record<string, unknown>,
        cb: (type: string, obj: V1Pod, raw: unknown) => void,
        done: (err: unknown) => void,
      ) => {
        rt.calls.watch++;
        let failed = false;
        let opened = false;
        const abort = await inner.watch(
          path,
          { ...params, allowWatchBookmarks: true, timeoutSeconds: rt.opts.watchTimeoutSeconds ?? 300 },
          (type: string, obj: V1Pod, raw: unknown) => {
            rt.calls.watchEvents++;
            cb(type, obj, raw);
          },
          (err: unknown) => {
            failed ||= !!err;
            if (opened) this.watching--;
            opened = false;
            done(err);
          },
        );
        if (!failed) {
          opened = true;
          this.watching++;
          if (current === this.informer) this.up();
        }
        return abort;
      },
    } as unknown as K8s.Watch;
    const list = async () => {
      rt.calls.list++;
      const lists = ++this.lists;
      const answer = await rt.core.listNamespacedPod({ namespace: rt.namespace, labelSelector: PodInformer.selector });
      if (current !== this.informer) return answer;
      this.up();
      const present = new Set(answer.items.map((p) => p.metadata?.name));
      for (const [name, set] of this.subs)
        if (!present.has(name)) for (const sub of [...set]) if (sub.lists < lists) sub.listener(undefined);
      return answer;
    };
    const current = new ListWatch<V1Pod>(`/api/v1/namespaces/${rt.namespace}/pods`, watch, list, false, PodInformer.selector);
    this.informer = current;
    const mine = (f: (pod: V1Pod) => void) => (pod: V1Pod) => {
      if (current === this.informer) f(pod);
    };
    current.on(
      'add',
      mine((pod) => this.notify(pod.metadata?.name, pod)),
    );
    current.on(
      'update',
      mine((pod) => this.notify(pod.metadata?.name, pod)),
    );
    current.on(
      'delete',
      mine((pod) => this.notify(pod.metadata?.name, undefined)),
    );
    // ListWatch stops on an error other than 410 Gone (which it answers with a fresh list itself).
    current.on('error', (err?: unknown) => {
      if (current !== this.informer) return;
      this.down ??= { since: Date.now(), err };
      this.down.err = err;
      this.informer = undefined;
      this.started = undefined;
      void current.stop();
      this.restart = setTimeout(() => {
        if (this.followers > 0 && !this.informer) this.run();
      }, this.restartDelay);
      this.restartDelay = Math.min(RESTART_MS.max, this.restartDelay * 2);
    });
    this.started = current.start().catch(() => undefined);
  }

  private up(): void {
    this.down = undefined;
    this.restartDelay = RESTART_MS.first;
  }
}

/** a is an older state of the pod than b (resourceVersions are etcd revisions; anything else is not compared) */
function older(a: V1Pod, b: V1Pod): boolean {
  const [ra, rb] = [a.metadata?.resourceVersion ?? '', b.metadata?.resourceVersion ?? ''];
  return /^\d+$/.test(ra) && /^\d+$/.test(rb) && BigInt(ra) < BigInt(rb);
}

const informers = new WeakMap<KubeApi, PodInformer>();

/** The runtime's pod informer, made on first use. */
export function podInformer(rt: KubeApi): PodInformer {
  let informer = informers.get(rt);
  if (!informer) informers.set(rt, (informer = new PodInformer(rt)));
  return informer;
}

/** Follows one pod of the worker's namespace through the runtime's shared informer until `decide` returns a value. */
export function followPod<T>(
  rt: KubeApi,
  name: string,
  decide: (pod: V1Pod | undefined) => T | undefined,
  hooks: FollowHooks = {},
): Promise<T | 'aborted'> {
  return podInformer(rt).follow(name, decide, hooks);
}
