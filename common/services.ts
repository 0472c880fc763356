// The service discovery contract, shared by the workflow (which allocates addresses and
// interpolates ((.svc:...)) refs in steps) and the activities (which interpolate services'
// own specs, since only the runtime knows where a service of the scope answers, and set env
// vars). PURE: no node imports, because the workflow bundle uses it.
import { interpolate, SVC_SOURCE, type Lookup } from '../schemas/interpolate';

/** Where a running service answers, as steps see it for the service's whole life. */
export interface ServiceAddress {
  name: string;
  host: string;
  /** port numbers by port name */
  ports: Record<string, number>;
  /** the port `address`, `port` and NAME_SERVICE_PORT mean: `default`, else the first listed */
  primaryPort?: string;
  /** the network namespace steps join to reach the service (its build's hub, docs/networking.md); absent in loopback mode */
  network?: string;
}

/** 32-bit FNV-1a: a short stable hash of a build id. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The build's network namespace: `ip netns` names are file names, so short and fixed. */
export function networkName(buildId: string): string {
  return `cw-${fnv1a(buildId).toString(16).padStart(8, '0')}`;
}

/**
 * The `index`-th service of a build gets 127.a.b.c: a and b from the build id, c counting.
 * The local runtime's address in loopback mode (no namespaces; with them, the runtime gives
 * each service an address on its build's bridge instead): two builds then use different
 * addresses, so both can listen on 5432. 127.0.x.x is never used: the host's own services live there.
 */
export function serviceHost(buildId: string, index: number): string {
  const h = fnv1a(buildId);
  const a = 1 + ((h >>> 8) % 254);
  const b = (h + Math.floor(index / 254)) & 0xff;
  return `127.${a}.${b}.${1 + (index % 254)}`;
}

function primary(addr: ServiceAddress): number | undefined {
  return addr.primaryPort === undefined ? undefined : addr.ports[addr.primaryPort];
}

function envName(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

/** Kubernetes-style variables: DB_SERVICE_HOST, DB_SERVICE_PORT, DB_SERVICE_PORT_<PORT>. */
export function serviceEnv(services: Record<string, ServiceAddress>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const addr of Object.values(services)) {
    const prefix = `${envName(addr.name)}_SERVICE`;
    env[`${prefix}_HOST`] = addr.host;
    const port = primary(addr);
    if (port !== undefined) env[`${prefix}_PORT`] = String(port);
    for (const [name, number] of Object.entries(addr.ports)) env[`${prefix}_PORT_${envName(name)}`] = String(number);
  }
  return env;
}

function field(addr: ServiceAddress, path: string[]): string | undefined {
  const [what, port] = path;
  const at = (n: number | undefined) => (n === undefined ? undefined : `${addr.host}:${n}`);
  if (what === 'host' && port === undefined) return addr.host;
  if (what === 'port' && port === undefined) return primary(addr)?.toString();
  if (what === 'address' && port === undefined) return at(primary(addr));
  if (what === 'ports' && path.length === 2) return addr.ports[port]?.toString();
  if (what === 'addresses' && path.length === 2) return at(addr.ports[port]);
  return undefined;
}

/**
 * Replaces ((.svc:NAME.field)) refs in `value`'s strings; other refs stay as text. Throws
 * naming every ref that the services in scope cannot answer (a service config loaded from
 * a file is checked only here).
 */
export function interpolateServices<T>(value: T, services: Record<string, ServiceAddress>): T {
  const lookup: Lookup = (ref) => {
    if (ref.source !== SVC_SOURCE) return { found: true, value: `((${ref.raw}))` };
    const [name, ...rest] = ref.path;
    const addr = services[name];
    const v = addr && field(addr, rest);
    return v === undefined ? { found: false } : { found: true, value: v };
  };
  const result = interpolate(value, lookup);
  if (result.problems.length > 0) throw new Error(result.problems.join('; '));
  if (result.missing.length > 0) {
    const known = Object.values(services).map((s) => `${s.name} (ports ${Object.keys(s.ports).join(', ') || 'none'})`);
    throw new Error(
      `cannot resolve ${[...new Set(result.missing.map((r) => `((${r.raw}))`))].join(', ')}: ` +
        (known.length ? `services in scope: ${known.join('; ')}` : 'no service is in scope'),
    );
  }
  return result.value as T;
}

/**
 * The addresses a service's own spec sees: the scope as the workflow knows it, with the
 * services started by the same step (`siblings`, itself included) at `host(name)`, where the
 * runtime puts them; the workflow's pre-allocated hosts are the local runtime's, and a
 * sibling may not have started yet, so only the runtime can say.
 */
export function siblingScope(
  scope: Record<string, ServiceAddress>,
  siblings: string[],
  host: (name: string) => string,
): Record<string, ServiceAddress> {
  const out = { ...scope };
  for (const name of siblings) {
    const addr = scope[name];
    if (addr) out[name] = { ...addr, host: host(name) };
  }
  return out;
}
