import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startPebble } from '../helpers/pebble.js';
import { plainGet, servedCertificate, startAcmeGateway } from '../helpers/acme-gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { gatewayRedis, RedisServerProcess } from '../helpers/redis.js';
import { createMemoryLogger } from '../../src/log/logger.js';

// Issue 15, item 1: TLS-ALPN-01 (RFC 8737) on the HTTPS listener, against pebble validating on
// the gateway's HTTPS port.

/** A handshake offering only `protocols`: the certificate got, or the error. */
function handshake(port: number, servername: string, protocols: string[]): Promise<{ fingerprint?: string; alpn?: string | false | null; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ALPNProtocols: protocols, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      const alpn = socket.alpnProtocol;
      socket.end();
      resolve({ ...(fingerprint ? { fingerprint } : {}), alpn });
    });
    socket.once('error', (err) => resolve({ error: err.message }));
  });
}

describe('ACME TLS-ALPN-01 against pebble', { timeout: 60_000 }, () => {
  test('issues through the HTTPS listener; ordinary clients never get a challenge certificate', async () => {
    const pebble = await startPebble();
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test', 'nocodb.acme.test'], challenge: 'tls-alpn-01', httpsPort: pebble.tlsPort, httpPort: await freePort() });
    try {
      await waitFor(() => gw.events('acme.certificate_issued').length > 0 || gw.events('acme.order_failed').length > 0, 'the order', 30_000, 50);
      assert.deepEqual(gw.events('acme.order_failed'), []);
      const answered = gw.events('acme.challenge_answered');
      assert.ok(answered.length >= 2 && answered.every((e) => e.type === 'tls-alpn-01'), JSON.stringify(answered));
      const root = await pebble.issuingRoot();
      const served = await servedCertificate(gw.running.ports.https, 'nocodb.acme.test', root);
      assert.equal(served.authorized, true, served.error);
      // No challenge pending now: a validation-shaped hello is closed, not answered with any certificate.
      const probe = await handshake(gw.running.ports.https, 'api.acme.test', ['acme-tls/1']);
      assert.ok(probe.error, JSON.stringify(probe));
      assert.ok(gw.events('acme.challenge_unknown').some((e) => e.host === 'api.acme.test'));
      // A client offering acme-tls/1 among others is an ordinary client: the real certificate.
      const mixed = await handshake(gw.running.ports.https, 'api.acme.test', ['acme-tls/1', 'http/1.1']);
      assert.equal(mixed.fingerprint, served.x509.fingerprint256);
      assert.equal(mixed.alpn, 'http/1.1');
      // HTTP over it still works, and the plain listener still redirects everything.
      const r = await plainGet(gw.running.ports.http, '/.well-known/acme-challenge/AAAAAAAAAAAAAAAAAAAAAAAA', 'api.acme.test');
      assert.equal(r.status, 308, 'with tls-alpn-01 the HTTP-01 path is not exempt');
      assert.equal(gw.upstream.seen.length, 0);
    } finally {
      await gw.close();
      await pebble.stop();
    }
  });
});

/** The first TLS record a real client sends for `servername` offering `protocols`, caught by a listener that answers nothing. */
async function captureHello(servername: string, protocols: string[]): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (c) => {
      const chunks: Buffer[] = [];
      c.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all);
          c.destroy();
        }
      });
      c.on('error', () => undefined);
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, ALPNProtocols: protocols, rejectUnauthorized: false });
  client.on('error', () => undefined);
  try {
    return await got;
  } finally {
    client.destroy();
    server.close();
  }
}

/**
 * A TCP relay from `listenPort` to `targetPort` that passes each connection's first chunk (the
 * ClientHello) one byte per TCP segment, the rest as it comes.
 */
async function dribblingRelay(listenPort: number, targetPort: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(targetPort, '127.0.0.1');
    up.setNoDelay(true);
    for (const s of [client, up]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        up.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (!first) return void up.write(chunk);
      first = false;
      client.pause();
      void (async () => {
        for (let i = 0; i < chunk.length && !up.destroyed; i++) {
          up.write(chunk.subarray(i, i + 1));
          await sleep(1);
        }
        client.resume();
      })();
    });
    client.on('end', () => up.end());
    up.pipe(client);
  });
  server.listen(listenPort, '127.0.0.1');
  await once(server, 'listening');
  return {
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A raw TCP connection that sends `bytes`, waits `holdMs`, then resets (RST, no FIN). */
async function resetAfter(port: number, bytes: Buffer, holdMs: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  if (bytes.length > 0) socket.write(bytes);
  await sleep(holdMs);
  socket.resetAndDestroy();
  await once(socket, 'close');
}

describe('ACME TLS-ALPN-01: hostile and slow clients on the HTTPS listener', { timeout: 60_000 }, () => {
  test('a hello one byte at a time still validates; resets before, during and after the hello (and during the Redis lookup) leave the gateway serving', async () => {
    const pebble = await startPebble();
    const redisServer = await RedisServerProcess.start();
    const log = createMemoryLogger();
    const redis = await gatewayRedis(redisServer.url, log);
    const admin = await gatewayRedis(redisServer.url, log);
    const httpsPort = await freePort();
    // pebble validates on its tlsPort: the relay there hands each ClientHello over a byte at a time.
    const relay = await dribblingRelay(pebble.tlsPort, httpsPort);
    // headersTimeout bounds the hello's read and the challenge lookup (2 s, so the test can wait one out).
    const gw = await startAcmeGateway({ pebble, hosts: ['api.acme.test'], challenge: 'tls-alpn-01', httpsPort, httpPort: await freePort(), redis, yaml: 'server: { headersTimeout: 2s }\n' });
    try {
      await waitFor(() => gw.events('acme.certificate_issued').length > 0 || gw.events('acme.order_failed').length > 0, 'the order', 30_000, 50);
      assert.deepEqual(gw.events('acme.order_failed'), [], JSON.stringify(gw.events('acme.order_failed')));
      assert.ok(gw.events('acme.challenge_answered').some((e) => e.type === 'tls-alpn-01' && e.host === 'api.acme.test'));
      const root = await pebble.issuingRoot();
      const served = await servedCertificate(httpsPort, 'api.acme.test', root);
      assert.equal(served.authorized, true, served.error);
      // An ordinary client's hello, a byte at a time through the relay: the real certificate.
      const dribbled = await servedCertificate(pebble.tlsPort, 'api.acme.test', root);
      assert.equal(dribbled.x509.fingerprint256, served.x509.fingerprint256);

      // Resets while the first record is read: nothing sent, a record header begun, a whole ordinary hello.
      await resetAfter(httpsPort, Buffer.alloc(0), 100);
      await resetAfter(httpsPort, Buffer.from([0x16, 0x03, 0x01]), 100);
      await resetAfter(httpsPort, await captureHello('api.acme.test', ['http/1.1']), 100);
      // A validation-shaped hello, reset while the challenge is looked up (Redis paused, so the lookup hangs).
      const validation = await captureHello('api.acme.test', ['acme-tls/1']);
      const unknownBefore = gw.events('acme.challenge_unknown').length;
      await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
      await resetAfter(httpsPort, validation, 300);
      await sleep(1_700);
      assert.equal(gw.events('acme.challenge_unknown').length, unknownBefore, 'the lookup came back to a closed socket and answered nothing');
      // A lookup that does not come back (Redis paused past headersTimeout) is given up: the connection closed, an event.
      await admin.call('CLIENT', 'PAUSE', '5000', 'ALL');
      const stalled = net.connect(httpsPort, '127.0.0.1');
      stalled.on('error', () => undefined);
      await once(stalled, 'connect');
      const sentAt = performance.now();
      stalled.write(validation);
      await once(stalled, 'close');
      const closedAfterMs = performance.now() - sentAt;
      assert.ok(closedAfterMs >= 1_500 && closedAfterMs < 4_000, `closed after ${Math.round(closedAfterMs)} ms`);
      assert.ok(gw.events('acme.challenge_unknown').length > unknownBefore);
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);

      // Still serving: a real client gets the certificate and an HTTP answer.
      const after = await servedCertificate(httpsPort, 'api.acme.test', root);
      assert.equal(after.x509.fingerprint256, served.x509.fingerprint256);
      const probe = await handshake(httpsPort, 'api.acme.test', ['acme-tls/1']);
      assert.ok(probe.error, 'no challenge pending: a validation-shaped hello is closed');
      assert.equal(gw.upstream.seen.length, 0);
    } finally {
      await gw.close();
      await relay.close();
      redis.disconnect();
      admin.disconnect();
      await redisServer.stop();
      await pebble.stop();
    }
  });
});
