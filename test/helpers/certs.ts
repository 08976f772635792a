import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCertificates {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the server does not trust. */
  rogueCert: string;
  rogueKey: string;
  remove(): void;
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
};

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA, a server certificate for 127.0.0.1/localhost, a client certificate it signed, and a self-signed rogue client; made with the openssl CLI. */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vfio-certs-'));
  const selfSigned = (name: string, subject: string): void =>
    openssl(dir, ['req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const signed = (name: string, subject: string, extensions: string, ca: string): void => {
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl(dir, ['req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`]);
  };
  selfSigned('ca', '/CN=vfio-exporter test CA');
  selfSigned('rogue-ca', '/CN=rogue CA');
  signed('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n', 'ca');
  signed('client', '/CN=prometheus', 'subjectAltName=DNS:prometheus.example\nextendedKeyUsage=clientAuth\n', 'ca');
  signed('rogue', '/CN=prometheus', 'subjectAltName=DNS:prometheus.example\nextendedKeyUsage=clientAuth\n', 'rogue-ca');
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    caCert: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    rogueCert: file('rogue.crt'),
    rogueKey: file('rogue.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
