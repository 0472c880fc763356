// A TCP relay in front of the API server, which a test cuts (every connection) and restores:
// an API server that goes away and comes back, for the pod informer's tests on KWOK and on the
// real node.
import net from 'node:net';
import { k8s, type KubeConfig } from '../../activities/runtime/kubernetes/client';
import { adminKubeConfig } from './setup/env';

/** A TCP relay in front of the API server, which the test can cut (every connection) and restore. */
export class Relay {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  kubeConfig(): KubeConfig {
    const admin = adminKubeConfig();
    const cluster = admin.getCurrentCluster()!;
    const kc = new (k8s().KubeConfig)();
    kc.loadFromOptions({
      clusters: [{ ...cluster, server: `https://127.0.0.1:${this.port}` }],
      users: admin.users,
      contexts: [{ name: 'relay', cluster: cluster.name, user: admin.getCurrentUser()!.name }],
      currentContext: 'relay',
    });
    return kc;
  }
}
