import { buildUrl, type Session } from '../../cli/connect';

test("a build's UI link encodes its id: the UI answers a job build's raw `:` with a 500", () => {
  const session = { uiUrl: 'http://127.0.0.1:8233', namespace: 'default' } as Session;
  expect(buildUrl(session, 'build-demo:unit:1')).toBe('http://127.0.0.1:8233/namespaces/default/workflows/build-demo%3Aunit%3A1');
  expect(buildUrl(session, 'build-8d3193c2')).toBe('http://127.0.0.1:8233/namespaces/default/workflows/build-8d3193c2');
  expect(buildUrl({ ...session, uiUrl: undefined }, 'build-8d3193c2')).toBeUndefined();
});
