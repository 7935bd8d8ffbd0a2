// Load clients that the stock tools cannot be: run as a child process of bench/run.mjs.
//
//   paced: requests at a fixed overall rate over N keep-alive TLS connections, latency measured
//          from each request's scheduled time (as wrk2 does), so a stall counts for every
//          request it delays. autocannon's `overallRate` sends each connection's quota as a burst
//          at the start of every second and, with a rate over 1,000/s, corrects for coordinated
//          omission in 1 ms steps; both would measure the bursts, not the load asked for.
//   hold:  opens N TLS connections, sends one request on each, keeps them all open and idle,
//          prints how many are open, and closes them on SIGTERM.
//
// Options come as JSON in argv[3]: { port, path, headers, rate, connections, seconds, warmup, count }.
// Results are one JSON line on stdout.
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

const [mode, json] = process.argv.slice(2);
const opts = JSON.parse(json ?? '{}');
const request = Buffer.from(
  `GET ${opts.path ?? '/'} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\n${Object.entries(opts.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`,
);

/** One keep-alive TLS connection that answers `send()` with the status once a response is complete. */
function connection() {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: opts.port, rejectUnauthorized: false }, () => resolve(conn));
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let waiting;
    const conn = {
      socket,
      closed: false,
      closing: false,
      send() {
        return new Promise((res, rej) => {
          waiting = { res, rej };
          socket.write(request);
        });
      },
    };
    socket.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        const status = Number(head.slice(9, 12));
        // The server ends this connection after the answer (e.g. its maxRequestsPerSocket).
        if (/\r\nconnection:\s*close/i.test(head)) conn.closing = true;
        const w = waiting;
        waiting = undefined;
        w?.res(status);
      }
    });
    const fail = (err) => {
      conn.closed = true;
      waiting?.rej(err ?? new Error('connection closed'));
      waiting = undefined;
      reject(err ?? new Error('connection closed'));
    };
    socket.on('error', fail);
    socket.on('close', () => fail(undefined));
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function paced() {
  const conns = await Promise.all(Array.from({ length: opts.connections }, connection));
  const free = [...conns];
  const intervalMs = 1000 / opts.rate;
  const latencies = [];
  let errors = 0;
  let non2xx = 0;
  let scheduled = 0;
  const queue = [];
  const t0 = performance.now();
  // Requests scheduled during the warm-up (JIT, connection pools) are sent but not counted.
  const measureFrom = t0 + (opts.warmup ?? 0) * 1000;
  const endAt = measureFrom + opts.seconds * 1000;
  let inflight = 0;
  // A connection the server closed is replaced, as a keep-alive client library would.
  const replace = (c) => {
    c.socket.destroy();
    connection().then(
      (n) => {
        conns.push(n);
        free.push(n);
        dispatch();
      },
      () => errors++,
    );
  };
  const dispatch = () => {
    while (queue.length > 0 && free.length > 0) {
      const due = queue.shift();
      const c = free.pop();
      inflight++;
      c.send().then(
        (status) => {
          inflight--;
          if (due >= measureFrom) {
            if (status < 200 || status > 299) non2xx++;
            latencies.push(performance.now() - due);
          }
          if (c.closing) replace(c);
          else free.push(c);
          dispatch();
        },
        () => {
          inflight--;
          errors++;
          replace(c);
        },
      );
    }
  };
  // Each tick queues every request whose time has come; a request waits in the queue (and its
  // latency grows) while every connection is busy, as it would for a real open-loop client.
  while (performance.now() < endAt) {
    const now = performance.now();
    while (t0 + scheduled * intervalMs <= now) queue.push(t0 + scheduled++ * intervalMs);
    dispatch();
    await sleep(1);
  }
  const drainUntil = performance.now() + 10_000;
  while ((queue.length > 0 || inflight > 0) && performance.now() < drainUntil) {
    dispatch();
    await sleep(5);
  }
  for (const c of conns) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  const r2 = (v) => Math.round(v * 100) / 100;
  return {
    requests: latencies.length,
    rate: r2(latencies.length / opts.seconds),
    targetRate: opts.rate,
    errors,
    non2xx,
    p50: r2(percentile(latencies, 50)),
    p90: r2(percentile(latencies, 90)),
    p99: r2(percentile(latencies, 99)),
    max: r2(latencies[latencies.length - 1] ?? 0),
  };
}

async function hold() {
  const conns = [];
  let failed = 0;
  const statuses = {};
  // In batches: a thousand simultaneous handshakes would measure the handshake queue, not idle memory.
  for (let i = 0; i < opts.count; i += 50) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(50, opts.count - i) }, connection));
    for (const b of batch) {
      if (b.status === 'fulfilled') conns.push(b.value);
      else failed++;
    }
  }
  await Promise.all(
    conns.map((c) =>
      c.send().then(
        (s) => (statuses[s] = (statuses[s] ?? 0) + 1),
        () => failed++,
      ),
    ),
  );
  process.stdout.write(`${JSON.stringify({ open: conns.filter((c) => !c.closed).length, failed, statuses })}\n`);
  await new Promise((r) => process.once('SIGTERM', r));
  for (const c of conns) c.socket.destroy();
}

if (mode === 'paced') process.stdout.write(`${JSON.stringify(await paced())}\n`);
else if (mode === 'hold') await hold();
else {
  process.stderr.write('usage: node bench/clients.mjs paced|hold <json options>\n');
  process.exitCode = 2;
}
