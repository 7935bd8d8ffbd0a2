// Child processes of the benchmark: spawn, wait until serving, memory from /proc, stop.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port nothing listens on right now (bound to loopback, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The absolute path of `cmd` on PATH, or undefined. */
export function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

/**
 * Starts a child whose output is kept (last 64 KB) for error messages. `stop()` sends SIGTERM,
 * then SIGKILL after `graceMs`; every child is also killed when the benchmark exits.
 */
export function start(name, cmd, args, opts = {}) {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: false });
  let output = '';
  const keep = (c) => {
    output = (output + c.toString('utf8')).slice(-65_536);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  exited.then(() => {
    done = true;
  });
  live.add(child);
  exited.then(() => live.delete(child));
  child.once('error', (err) => {
    output += `\nspawn error: ${err.message}`;
  });
  return {
    name,
    child,
    get pid() {
      return child.pid;
    },
    get output() {
      return output;
    },
    get exited() {
      return done;
    },
    /** Resolves once `pattern` shows in the output; rejects if the child exits or time is up. */
    async waitFor(pattern, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (done) throw new Error(`${name} exited before it was ready:\n${output.slice(-4000)}`);
        if (Date.now() > until) throw new Error(`${name} not ready within ${timeoutMs} ms:\n${output.slice(-4000)}`);
        await sleep(50);
      }
    },
    async stop(graceMs = 8_000) {
      if (done) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

const live = new Set();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Polls a TCP port until it accepts a connection. */
export async function waitForPort(port, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function statusField(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and all its descendants (cluster workers, nginx workers), from /proc. */
export function processTree(pid) {
  const parents = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of parents) if (pp === tree[i]) tree.push(p);
  return tree;
}

/** Peak RSS (VmHWM) summed over the process tree: for several processes, an upper bound. */
export function peakRss(pid) {
  return processTree(pid).reduce((n, p) => n + statusField(p, 'VmHWM'), 0);
}

/** Current RSS (VmRSS) summed over the process tree. */
export function currentRss(pid) {
  return processTree(pid).reduce((n, p) => n + statusField(p, 'VmRSS'), 0);
}

/** CPU seconds (user + system) used so far by the process tree. */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100;
}

/** Jiffies of the whole machine: busy and total, from the first line of /proc/stat. */
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** Socket inodes held open by the process tree of `pid`. */
function socketInodes(pid) {
  const inodes = new Set();
  for (const p of processTree(pid)) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** /proc/net/tcp{,6} address ("0100007F:1F90", 32-bit words in host order) → "127.0.0.1:8080" / "[::1]:8080". */
function decodeAddress(hex) {
  const [addr, port] = hex.split(':');
  const words = addr.match(/.{8}/g).map((w) => w.match(/../g).reverse().join(''));
  const bytes = words.join('').match(/../g).map((b) => parseInt(b, 16));
  if (bytes.length === 4) return { host: bytes.join('.'), port: parseInt(port, 16), loopback: bytes[0] === 127 };
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255;
  const v6 = words.join('').match(/.{4}/g).map((g) => g.replace(/^0+(?=.)/, '')).join(':');
  const loopback = (bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1) || (mapped && bytes[12] === 127);
  return { host: `[${v6}]`, port: parseInt(port, 16), loopback };
}

/** Every TCP port the process tree of `pid` listens on, with its address and whether that is loopback. */
export function listeners(pid) {
  const mine = socketInodes(pid);
  const out = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = [];
    try {
      lines = readFileSync(table, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      // f[3] is the state: 0A is LISTEN; f[9] the socket's inode.
      if (f[3] === '0A' && mine.has(f[9])) out.push(decodeAddress(f[1]));
    }
  }
  return out;
}
