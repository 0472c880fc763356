import { interpolateServices, networkName, serviceEnv, serviceHost, type ServiceAddress } from '../../common/services';

const db: ServiceAddress = { name: 'db', host: '127.9.8.1', ports: { default: 5432 }, primaryPort: 'default' };
const bus: ServiceAddress = {
  name: 'message-bus',
  host: '127.9.8.2',
  ports: { client: 4222, 'http-monitor': 8222 },
  primaryPort: 'client',
};

describe('services: addresses and env vars', () => {
  test('Kubernetes-style env vars: NAME_SERVICE_HOST, _PORT (default or first), _PORT_<NAME> upper-cased with - as _', () => {
    expect(serviceEnv({ db, 'message-bus': bus })).toEqual({
      DB_SERVICE_HOST: '127.9.8.1',
      DB_SERVICE_PORT: '5432',
      DB_SERVICE_PORT_DEFAULT: '5432',
      MESSAGE_BUS_SERVICE_HOST: '127.9.8.2',
      MESSAGE_BUS_SERVICE_PORT: '4222',
      MESSAGE_BUS_SERVICE_PORT_CLIENT: '4222',
      MESSAGE_BUS_SERVICE_PORT_HTTP_MONITOR: '8222',
    });
  });

  test('every ((.svc:...)) form; other refs stay as text', () => {
    const scope = { db, 'message-bus': bus };
    expect(
      interpolateServices(
        [
          '((.svc:db.address))',
          '((.svc:db.host))',
          '((.svc:db.port))',
          'x ((.svc:message-bus.addresses.http-monitor)) ((.svc:message-bus.ports.client))',
          '((.:local)) ((static))',
        ],
        scope,
      ),
    ).toEqual(['127.9.8.1:5432', '127.9.8.1', '5432', 'x 127.9.8.2:8222 4222', '((.:local)) ((static))']);
  });

  test('a ref the services in scope cannot answer names them', () => {
    expect(() => interpolateServices('((.svc:db.ports.http)) ((.svc:cache.host))', { db })).toThrow(
      'cannot resolve ((.svc:db.ports.http)), ((.svc:cache.host)): services in scope: db (ports default)',
    );
    expect(() => interpolateServices('((.svc:db.host))', {})).toThrow('no service is in scope');
  });

  test('addresses are stable per build and index, distinct within a build, never 127.0.x.x; namespace names are short', () => {
    const hosts = Array.from({ length: 600 }, (_, i) => serviceHost('build-a', i));
    expect(new Set(hosts).size).toBe(600);
    expect(hosts.every((h) => /^127\.([1-9]\d{0,2})\.\d{1,3}\.([1-9]\d{0,2})$/.test(h) && !h.startsWith('127.0.'))).toBe(true);
    expect(serviceHost('build-a', 3)).toBe(hosts[3]);
    expect(serviceHost('build-b', 0)).not.toBe(hosts[0]);
    expect(networkName('build-a')).toMatch(/^cw-[0-9a-f]{8}$/);
    expect(networkName('build-a')).not.toBe(networkName('build-b'));
  });
});
