// A private CA and certificates it signs, made with openssl for a test's TLS server and clients.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * In `dir`: ca.pem/ca.key (CN `caName`) and, for each leaf, NAME.pem/NAME.key signed by it with
 * the given openssl extensions (subjectAltName, extendedKeyUsage, …). Valid for a day.
 */
export function makeCertificates(dir: string, caName: string, leaves: { name: string; ext: string }[]): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${caName}`, '-keyout', 'ca.key', '-out', 'ca.pem');
  for (const { name, ext } of leaves) {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl(
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1'],
      ...['-extfile', `${name}.ext`, '-out', `${name}.pem`],
    );
  }
}
