// The real node's address plan and CoreDNS objects (pure): every address from the ranges the
// project may use, the well-known Service IPs inside the Service range, nothing overlapping.
import {
  CLUSTER_DOMAIN,
  DNS_SERVICE_IP,
  KUBERNETES_SERVICE_IP,
  NODE_IP,
  POD_CIDR,
  SERVICE_CIDR,
  coreDnsObjects,
} from '../../cli/dev/k8s/node';

const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const inCidr = (ip: string, cidr: string) => {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return toInt(ip) >= toInt(base) && toInt(ip) < toInt(base) + size;
};

test('node, pods and Services take addresses from 198.18.0.0/15 only, without overlapping', () => {
  for (const ip of [NODE_IP, DNS_SERVICE_IP, KUBERNETES_SERVICE_IP, POD_CIDR.split('/')[0], SERVICE_CIDR.split('/')[0]])
    expect(inCidr(ip, '198.18.0.0/15')).toBe(true);
  expect(inCidr(KUBERNETES_SERVICE_IP, SERVICE_CIDR)).toBe(true);
  expect(toInt(KUBERNETES_SERVICE_IP)).toBe(toInt(SERVICE_CIDR.split('/')[0]) + 1);
  expect(inCidr(DNS_SERVICE_IP, SERVICE_CIDR)).toBe(true);
  expect(inCidr(NODE_IP, SERVICE_CIDR)).toBe(false);
  expect(inCidr(NODE_IP, POD_CIDR)).toBe(false);
  expect(inCidr(SERVICE_CIDR.split('/')[0], POD_CIDR)).toBe(false);
  // 198.18.64.0/18 is the local runtime's service network, 198.18.128.0/18 the containerd runtime's
  expect(inCidr('198.18.64.0', POD_CIDR) || inCidr('198.18.128.0', POD_CIDR)).toBe(false);
});

test('CoreDNS runs behind kube-dns at the kubelet’s clusterDNS address, answering the cluster domain only', () => {
  const objects = coreDnsObjects('127.0.0.1:5000/causeway/coredns:x');
  const svc = objects.find((o) => o.kind === 'Service') as unknown as { spec: { clusterIP: string; selector: Record<string, string> } };
  expect(svc.spec.clusterIP).toBe(DNS_SERVICE_IP);
  const deploy = objects.find((o) => o.kind === 'Deployment') as unknown as {
    spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { image: string }[] } } };
  };
  expect(deploy.spec.template.metadata.labels).toEqual(svc.spec.selector);
  expect(deploy.spec.template.spec.containers[0].image).toBe('127.0.0.1:5000/causeway/coredns:x');
  const corefile = (objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: { Corefile: string } }).data.Corefile;
  expect(corefile).toContain(`kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa`);
  expect(corefile).not.toContain('forward');
  expect(objects.map((o) => o.kind)).toEqual(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Service']);
});
