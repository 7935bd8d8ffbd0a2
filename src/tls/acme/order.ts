import { generateKeyPairSync } from 'node:crypto';
import * as acme from 'acme-client';
import type { AcmeConfig } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { ChallengeStore } from './challenges.js';

export interface Issued {
  /** The full chain, PEM. */
  cert: string;
  /** The new certificate's key (ECDSA P-256, PKCS#8 PEM): a fresh one each order. */
  key: string;
  orderUrl: string;
}

/** acme-client errors carry the CA's problem detail; axios errors their code. */
export function describeAcmeError(err: unknown): string {
  const e = err as { message?: string; code?: string; response?: { status?: number } };
  // acme-client 5.4.0 after its retries of a network error (see probeDirectory).
  if (e.message?.includes("reading 'config'")) return 'the ACME server could not be reached (network error; acme-client does not say which)';
  return [e.message ?? String(err), e.code && !String(e.message).includes(e.code) ? `(${e.code})` : ''].filter(Boolean).join(' ');
}

/**
 * One order (RFC 8555 §7.4) for `names`: each authorization answered with the configured
 * challenge (its answer put where every instance can serve it), finalized with a CSR of a new
 * key, the chain downloaded. Challenges are removed whatever happens.
 */
export async function orderCertificate(client: acme.Client, names: readonly string[], type: AcmeConfig['challenge'], store: ChallengeStore, log: Logger): Promise<Issued> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const [, csr] = await acme.crypto.createCsr({ commonName: names[0] as string, altNames: [...names] }, key);
  const order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })) });
  log.security('acme.order_placed', { order: order.url, hosts: names, challenge: type });
  const authorizations = await client.getAuthorizations(order);
  // allSettled, not all: a failed name must not leave the others' polling running behind the order.
  const settled = await Promise.allSettled(
    authorizations.map(async (authz) => {
      if (authz.status === 'valid') return;
      const host = authz.identifier.value;
      const challenge = authz.challenges.find((c) => c.type === type);
      if (!challenge) throw new Error(`${host}: the CA offers no ${type} challenge (it offers ${authz.challenges.map((c) => c.type).join(', ')})`);
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      if (type === 'http-01') await store.putHttp(challenge.token, keyAuthorization);
      else {
        const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey());
        await store.putAlpn(host, { cert: alpnCert.toString(), key: alpnKey.toString() });
      }
      try {
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      } catch (err) {
        throw new Error(`${host}: ${type} challenge failed: ${describeAcmeError(err)}`);
      } finally {
        if (type === 'http-01') await store.removeHttp(challenge.token).catch(() => undefined);
        else await store.removeAlpn(host).catch(() => undefined);
      }
    }),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const finalized = await client.finalizeOrder(order, csr);
  const cert = await client.getCertificate(finalized);
  return { cert, key, orderUrl: order.url };
}
