// A step that must keep running until the test says so (a worker hands it over, a producer pod
// is deleted while the build goes on) polls a gate the test serves at the node's address, which
// pods reach as they would reach a forge. A real container cannot be told to end otherwise.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { NODE_IP } from '../../../cli/dev/k8s/node';

export class Gate {
  private readonly opened = new Set<string>();
  private readonly server = http.createServer((req, res) => {
    res.writeHead(this.opened.has((req.url ?? '').slice(1)) ? 200 : 404).end();
  });

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, NODE_IP, resolve));
    return this;
  }

  /** A shell loop (the task image's curl) that returns once `open(name)` was called. */
  waitFor(name: string): string {
    const { port } = this.server.address() as AddressInfo;
    return `until curl -sf -o /dev/null http://${NODE_IP}:${port}/${name}; do sleep 0.2; done`;
  }

  open(name: string): void {
    this.opened.add(name);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
