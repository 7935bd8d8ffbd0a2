import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { holdUntilServed } from '../../../src/server/hold.js';

// A real server on a loopback port: requests that arrive before the pipeline is attached wait,
// and are answered in arrival order once it is.

async function listening(): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), 'condition never held');
};

test('requests that arrive before serve() are held, then answered in arrival order by the real handler', async (t) => {
  const { server, port } = await listening();
  t.after(() => server.close());
  const held = holdUntilServed(server);
  let arrived = 0;
  server.on('request', () => arrived++);
  const first = get(port, '/first');
  await until(() => arrived === 1);
  const second = get(port, '/second');
  await until(() => arrived === 2);

  const order: string[] = [];
  held.serve({
    request: (req, res) => {
      order.push(String(req.url));
      res.end(`served ${req.url}`);
    },
  });
  assert.deepEqual(await Promise.all([first, second]), [
    { status: 200, body: 'served /first' },
    { status: 200, body: 'served /second' },
  ]);
  assert.deepEqual(order, ['/first', '/second']);
  // Later requests go straight to the handler.
  assert.deepEqual(await get(port, '/later'), { status: 200, body: 'served /later' });
});

test('beyond the limit a connection is dropped, as a full listen backlog would', async (t) => {
  const { server, port } = await listening();
  t.after(() => server.close());
  const held = holdUntilServed(server, 1);
  let arrived = 0;
  server.on('request', () => arrived++);
  const kept = get(port, '/kept');
  await until(() => arrived === 1);
  await assert.rejects(get(port, '/dropped'), /socket hang up|ECONNRESET/);
  held.serve({ request: (req, res) => res.end(String(req.url)) });
  assert.deepEqual(await kept, { status: 200, body: '/kept' });
});

test('a held upgrade with no upgrade handler is dropped when served', async (t) => {
  const { server, port } = await listening();
  t.after(() => server.close());
  const held = holdUntilServed(server);
  let upgrades = 0;
  server.on('upgrade', () => upgrades++);
  const socket = net.connect(port, '127.0.0.1');
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  await until(() => upgrades === 1);
  const closed = once(socket, 'close');
  held.serve({ request: (_req, res) => res.end() });
  await closed;
  assert.equal(socket.destroyed, true);
});
