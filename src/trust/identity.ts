import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';
import { randomToken } from '../core/random.js';
import { normalizeDeviceId } from './device-id.js';

/**
 * A store's persistent device identity: a self-signed ECDSA P-256 certificate and its private key in one PEM file
 * beside the sidecar (`<sidecar>.identity.pem`, mode 0600). Every WebRTC connection presents it in DTLS, so its
 * SHA-256 fingerprint, the device id, is what remote peers verify and allowlist.
 */
export interface DeviceIdentity {
  /** The PEM file with the certificate and the key (node-datachannel's certificatePemFile and keyPemFile). */
  readonly pemFile: string;
  /** SHA-256 fingerprint of the certificate, colon hex. */
  readonly deviceId: string;
}

/** The identity file beside a sidecar. */
export function identityPath(sidecar: string): string {
  return `${sidecar}.identity.pem`;
}

/** Validity of a generated certificate. DTLS peers check the fingerprint only, never the dates. */
const VALIDITY_YEARS = 100;

/**
 * Loads the identity at `pemFile`, creating it if the file does not exist. A file that exists but cannot be read or
 * parsed, or whose key does not match its certificate, is E_IDENTITY and is left untouched. Two processes creating
 * it at once agree on one (creation is a no-clobber hard link of a complete temp file).
 */
export async function loadOrCreateIdentity(pemFile: string): Promise<DeviceIdentity & { created: boolean }> {
  const existing = await loadIdentity(pemFile);
  if (existing) return { ...existing, created: false };
  const tmp = `${pemFile}.${randomToken(8)}.tmp`;
  await writeFile(tmp, await generatePem(), { mode: 0o600, flush: true }).catch((err: unknown) => {
    throw identityError(pemFile, `cannot be created: ${(err as Error).message}`);
  });
  let created = true;
  try {
    await link(tmp, pemFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw identityError(pemFile, `cannot be created: ${(err as Error).message}`);
    created = false; // another process won the race: use its identity
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const identity = await loadIdentity(pemFile);
  if (!identity) throw identityError(pemFile, 'vanished right after it was created');
  return { ...identity, created };
}

/** The identity at `pemFile`, or undefined if there is no such file. */
export async function loadIdentity(pemFile: string): Promise<DeviceIdentity | undefined> {
  let text: string;
  try {
    text = await readFile(pemFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw identityError(pemFile, `cannot be read: ${(err as Error).message}`);
  }
  try {
    const cert = new X509Certificate(text);
    const key = createPrivateKey(text);
    if (!cert.checkPrivateKey(key)) throw new Error('its key does not match its certificate');
    const deviceId = normalizeDeviceId(cert.fingerprint256);
    if (!deviceId) throw new Error('no SHA-256 fingerprint');
    return { pemFile, deviceId };
  } catch (err) {
    throw identityError(
      pemFile,
      `is damaged (${(err as Error).message}); move it away to create a new identity (peers that allowlisted the old id must then list the new one)`,
    );
  }
}

function identityError(file: string, what: string): P2PSyncError {
  return new P2PSyncError('E_IDENTITY', `the device identity ${file} ${what}`, { file });
}

/**
 * node:crypto generates keys but cannot issue certificates; @peculiar/x509 builds the self-signed certificate on
 * WebCrypto. It is loaded only when an identity is created (it installs the reflect-metadata polyfill globally).
 */
async function generatePem(): Promise<string> {
  const x509 = await import('@peculiar/x509');
  // Node's webcrypto is the WebCrypto the library expects; the DOM `Crypto` type is not in our lib
  x509.cryptoProvider.set(webcrypto as never);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    name: 'CN=p2psync',
    notBefore: new Date(now - 24 * 3600 * 1000),
    notAfter: new Date(now + VALIDITY_YEARS * 365 * 24 * 3600 * 1000),
    keys,
    signingAlgorithm: algorithm,
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
  return `${cert.toString('pem')}\n${keyPem}`;
}
