// Closed-loop load: wrk when installed (C, cheap: it leaves more of the two cores to the server
// under test), else autocannon. Both: N keep-alive TLS connections, as fast as answers come.
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';

/** "1.23ms" / "850.00us" / "1.02s" → milliseconds. */
function ms(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

export function parseWrk(out) {
  const pct = (p) => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out);
    return m ? ms(m[1]) : NaN;
  };
  const total = /^\s*(\d+) requests in ([\d.]+)(\w+)/m.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s*([\d.]+)/.exec(out)?.[1] ?? NaN),
    requests: total ? Number(total[1]) : 0,
    p50: pct(50),
    p99: pct(99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    errors: sock ? sock.slice(1).reduce((n, v) => n + Number(v), 0) : 0,
  };
}

function runWrk(wrk, { url, headers, connections, seconds }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  return new Promise((resolve, reject) => {
    const child = spawn(wrk, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`wrk exited ${code}: ${out}`));
      else resolve({ ...parseWrk(out), raw: out });
    });
  });
}

async function runAutocannon({ url, headers, connections, seconds }) {
  const r = await autocannon({ url, headers, connections, duration: seconds, pipelining: 1, timeout: 10 });
  return {
    rps: r.requests.total / seconds,
    requests: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

/** A load tool: `run({ url, headers, connections, seconds })` → rps, p50/p99 (ms), non2xx, errors. */
export function loadTool(wrkPath) {
  if (wrkPath) return { name: 'wrk', run: (o) => runWrk(wrkPath, o) };
  return { name: 'autocannon', run: runAutocannon };
}
