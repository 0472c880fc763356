// The kubernetes runtime's API calls share kept-alive connections (activities/runtime/kubernetes/
// client.ts): client-node makes an agent, so a connection and a TLS handshake, for every request.
// Counted at a TCP relay in front of the real kube-apiserver; a connection the relay cuts is
// replaced on the next call.
import { KubeApi } from '../../activities/runtime/kubernetes/api';
import { adminKubeConfig } from './setup/env';
import { Relay } from './relay';

let relay: Relay;
beforeEach(async () => {
  relay = new Relay(new URL(adminKubeConfig().getCurrentCluster()!.server));
  await relay.open();
});
afterEach(() => relay.cut());

test('sequential API calls go over one connection', async () => {
  const rt = new KubeApi({ namespace: 'default', worker: 'connections-test', kubeConfig: relay.kubeConfig() });
  for (let i = 0; i < 5; i++) await rt.core.readNamespace({ name: 'default' });
  await rt.core.listNamespacedConfigMap({ namespace: 'default' });
  expect(relay.accepted).toBe(1);
});

test('a kept connection the server side closed is replaced on the next call', async () => {
  const rt = new KubeApi({ namespace: 'default', worker: 'connections-test', kubeConfig: relay.kubeConfig() });
  await rt.core.readNamespace({ name: 'default' });
  await relay.cut();
  await relay.open();
  await expect(rt.call('read namespace', () => rt.core.readNamespace({ name: 'default' }))).resolves.toMatchObject({
    metadata: { name: 'default' },
  });
  expect(relay.accepted).toBe(2);
});
