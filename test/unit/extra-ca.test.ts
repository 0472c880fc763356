import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { deferredExtraCaCerts } from '../../cli/extra-ca';

/** A stand-in for node:tls: the contexts asked for are recorded. */
function fakeTls() {
  const made: tls.SecureContextOptions[] = [];
  const module = {
    rootCertificates: ['ROOT'],
    createSecureContext: (options?: tls.SecureContextOptions) => (made.push(options ?? {}), {}) as tls.SecureContext,
  };
  return { module: module as unknown as typeof tls, made };
}

test('puts the variable back for child processes and adds the file to contexts without a ca of their own', () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cw-extra-ca-')), 'ca.pem');
  fs.writeFileSync(file, 'EXTRA');
  const env: NodeJS.ProcessEnv = { CAUSEWAY_EXTRA_CA_CERTS: file };
  const { module, made } = fakeTls();
  deferredExtraCaCerts(env, () => module);
  expect(env).toEqual({ NODE_EXTRA_CA_CERTS: file });
  module.createSecureContext({ servername: 'x' } as tls.SecureContextOptions);
  module.createSecureContext({ ca: 'MINE' });
  expect(made).toEqual([{ servername: 'x', ca: ['ROOT', 'EXTRA'] }, { ca: 'MINE' }]);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('a file that cannot be read leaves Node’s roots, with Node’s warning', () => {
  const env: NodeJS.ProcessEnv = { CAUSEWAY_EXTRA_CA_CERTS: '/nonexistent/ca.pem' };
  const { module, made } = fakeTls();
  const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  deferredExtraCaCerts(env, () => module);
  module.createSecureContext({});
  expect(made).toEqual([{ ca: ['ROOT'] }]);
  expect(warn).toHaveBeenCalledWith(expect.stringMatching(/Ignoring extra certs from `\/nonexistent\/ca.pem`, load failed/));
  warn.mockRestore();
});

test('does nothing when the launcher handed nothing over', () => {
  const env: NodeJS.ProcessEnv = { NODE_EXTRA_CA_CERTS: '/x.pem' };
  const { module } = fakeTls();
  const before = module.createSecureContext;
  deferredExtraCaCerts(env, () => module);
  expect(env).toEqual({ NODE_EXTRA_CA_CERTS: '/x.pem' });
  expect(module.createSecureContext).toBe(before);
});
