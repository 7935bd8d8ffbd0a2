// Reads a V8 .cpuprofile (node --cpu-prof) and lists the frames with the most self time, and the
// packages / source folders the time goes to. `node bench/profile.mjs <file> [top]`.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Self time per frame and per package (node_modules/<pkg>, src folder, or node internals). */
export function summarize(file, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  const dt = prof.timeDeltas ?? [];
  prof.samples.forEach((id, i) => hits.set(id, (hits.get(id) ?? 0) + (dt[i] ?? 0)));
  let total = 0;
  const frames = new Map();
  const groups = new Map();
  for (const [id, us] of hits) {
    const node = byId.get(id);
    const cf = node.callFrame;
    total += us;
    const url = cf.url ?? '';
    const short = url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/dist\//, 'dist/');
    const key = `${cf.functionName || '(anonymous)'} ${short}${url ? `:${cf.lineNumber + 1}` : ''}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
    groups.set(groupOf(url, cf.functionName), (groups.get(groupOf(url, cf.functionName)) ?? 0) + us);
  }
  const rank = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((1000 * us) / total) / 10 }));
  return { totalMs: Math.round(total / 1000), frames: rank(frames), groups: rank(groups) };
}

function groupOf(url, fn) {
  if (!url) return fn === '(garbage collector)' ? '(gc)' : fn === '(idle)' ? '(idle)' : fn === '(program)' ? '(program: native, TLS, syscalls)' : `(native) ${fn}`;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return `npm:${m[1]}`;
  const d = /\/dist\/([^/]+)\//.exec(url);
  if (d) return `src/${d[1]}`;
  if (/\/dist\/[^/]+\.js$/.test(url)) return 'src/*.js';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const s = summarize(process.argv[2], Number(process.argv[3] ?? 25));
  console.log(`total sampled: ${s.totalMs} ms`);
  console.log('\nby package / folder:');
  for (const g of s.groups) console.log(`  ${String(g.pct).padStart(5)}%  ${String(g.ms).padStart(6)} ms  ${g.name}`);
  console.log('\ntop self-time frames:');
  for (const f of s.frames) console.log(`  ${String(f.pct).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
}
