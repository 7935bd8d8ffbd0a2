// What the tests and the benchmark run besides Node, each with the Debian package that has it.
// A fresh machine with only the README's two commands must pass `npm test` (issue 12, item 9):
// missing packages are installed from Debian when we can (root, apt-get), else we stop with
// one line that names them and the command that installs them.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The interpreter the real-FastAPI tests start (test/helpers/real-crm-api.ts): Debian's, not a pyenv one. */
const PYTHON = '/usr/bin/python3';
/** Wait for another apt run (dpkg lock) this long instead of failing at once. */
const APT_LOCK_TIMEOUT_S = 600;

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(dir, cmd)));
}

/** Python modules Debian's python3 cannot import, in one interpreter start. */
function missingModules(modules) {
  if (!executable(PYTHON)) return modules;
  const probe = `import importlib.util as u\nfor m in ${JSON.stringify(modules)}:\n    if u.find_spec(m) is None: print(m)`;
  const r = spawnSync(PYTHON, ['-c', probe], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter(Boolean) : modules;
}

const command = (pkg, cmd) => ({ pkg, missing: () => !onPath(cmd) });
const file = (pkg, path) => ({ pkg, missing: () => !executable(path) });
const python = (pkg, module) => ({ pkg, module });

/** `npm test`: what some test file runs. */
export const TEST_NEEDS = [
  file('chromium', '/usr/bin/chromium'), // test/helpers/browser.ts: Debian's Chromium, never a downloaded one
  file('libnss3-tools', '/usr/bin/certutil'), // the test browser trusts the development CA through an NSS db
  command('nginx', 'nginx'), // test/integration/nginx.test.ts: nginx -t and nginx in front of the gateway
  command('caddy', 'caddy'), // forward-auth tests: Caddy's forward_auth in front of a stand-in app
  command('pebble', 'pebble'), // ACME tests: a real ACME server (the package also has pebble-challtestsrv)
  command('pebble', 'pebble-challtestsrv'), // ...which answers the ACME server's DNS with 127.0.0.1
  command('redis-server', 'redis-server'), // test/helpers/deployment.ts starts a password-protected one
  command('openssl', 'openssl'), // test/helpers/deployment.ts issues its certificates with it
  command('prometheus', 'promtool'), // test/integration/metrics-promtool.test.ts: `promtool check metrics` on a live /metrics
  python('python3-fastapi', 'fastapi'), // test/integration/real-crm-api.test.ts: the real FastAPI app...
  python('python3-uvicorn', 'uvicorn'), // ...under uvicorn (which pulls in python3-wsproto for --ws wsproto)
  python('python3-multipart', 'multipart'), // FastAPI's File/Form (multipart upload) import it
  python('python3-jwt', 'jwt'), // test/integration/identity-assertion.test.ts: the app checks the gateway's assertion with PyJWT...
  python('python3-cryptography', 'cryptography'), // ...whose ES256 needs it (only a Recommends of python3-jwt)
];

/** `npm run bench`: the comparison rows and the load tool; bench/run.mjs skips a row whose tool is absent. */
export const BENCH_NEEDS = [command('nginx', 'nginx'), command('caddy', 'caddy'), command('wrk', 'wrk'), command('redis-server', 'redis-server')];

function missingPackages(needs) {
  const modules = needs.filter((n) => n.module);
  const absent = new Set(modules.length > 0 ? missingModules(modules.map((n) => n.module)) : []);
  return needs.filter((n) => (n.module ? absent.has(n.module) : n.missing())).map((n) => n.pkg);
}

function canInstall() {
  return process.platform === 'linux' && process.getuid?.() === 0 && onPath('apt-get');
}

function apt(args) {
  const r = spawnSync('apt-get', ['-o', `DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT_S}`, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

/**
 * Installs what `needs` lack (one `apt-get update`, only when something is missing). Returns
 * the packages still missing afterwards, and the line that says how to get them.
 */
export function ensurePrerequisites(needs, what) {
  const missing = [...new Set(missingPackages(needs))];
  if (missing.length === 0) return { missing, message: undefined };
  if (canInstall()) {
    process.stderr.write(`${what} needs ${missing.join(' ')}: installing from Debian (apt-get install)\n`);
    if (apt(['update', '-qq']) && apt(['install', '-y', '-qq', ...missing])) {
      const left = [...new Set(missingPackages(needs))];
      if (left.length === 0) return { missing: left, message: undefined };
      missing.splice(0, missing.length, ...left);
    }
  }
  const how = canInstall() ? 'apt-get install failed; see its output above, then retry' : `install them with: sudo apt-get install -y ${missing.join(' ')}`;
  return { missing, message: `${what} needs Debian packages that are missing: ${missing.join(' ')}; ${how}` };
}
