import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

/** Debian's interpreter, where python3-fastapi and python3-uvicorn are installed (`.ci/run` installs them). */
export const PYTHON = '/usr/bin/python3';
const APP_DIR = join(dirname(fileURLToPath(import.meta.url)), 'apps');
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;
const PORT_ATTEMPTS = 5;

/**
 * How uvicorn treats the forwarding headers:
 * - `no-proxy-headers`: `--no-proxy-headers`, X-Forwarded-* ignored (redirects say `http://127.0.0.1:N`);
 * - `default`: as `uvicorn app:app` runs, which already trusts X-Forwarded-Proto/-For from 127.0.0.1
 *   (redirects say `https://127.0.0.1:N`);
 * - `recipe`: docs/applications.md's `--proxy-headers --forwarded-allow-ips=127.0.0.1`.
 */
export type UvicornMode = 'no-proxy-headers' | 'default' | 'recipe';

const MODE_ARGS: Record<UvicornMode, string[]> = {
  'no-proxy-headers': ['--no-proxy-headers'],
  default: [],
  recipe: ['--proxy-headers', '--forwarded-allow-ips=127.0.0.1'],
};

/** One request as the app recorded it (its own middleware, see crm_api.py). */
export interface AppRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Raw header pairs, names lower-cased as uvicorn gives them, in the order received. */
  readonly headers: [string, string][];
  readonly client: string | null;
  readonly scheme: string;
}

export interface RealCrmApi {
  /** `http://127.0.0.1:<port>`, the route's upstream. */
  readonly url: string;
  readonly port: number;
  readonly mode: UvicornMode;
  /** uvicorn's own output so far, for failure messages. */
  output(): string;
  /** The app's request log, read directly from the app (not through the gateway). */
  requests(): Promise<AppRequest[]>;
  clearRequests(): Promise<void>;
  /** A GET straight to the app (not through the gateway), JSON-decoded. */
  direct<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

/** Header value by name from the app's raw list (the first, or all with `all`). */
export function headerOf(req: AppRequest, name: string): string | undefined {
  return req.headers.find(([k]) => k === name.toLowerCase())?.[1];
}

export function headersOf(req: AppRequest, name: string): string[] {
  return req.headers.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v);
}

/**
 * Starts test/helpers/apps/crm_api.py under uvicorn on a free loopback port and waits until it
 * answers. A port taken between the probe and uvicorn's bind (uvicorn exits on EADDRINUSE) is
 * retried on another port.
 */
export async function startRealCrmApi(opts: { mode?: UvicornMode; env?: Record<string, string>; /** Another app module of apps/ (`assertion_api:app`). */ app?: string } = {}): Promise<RealCrmApi> {
  const mode = opts.mode ?? 'recipe';
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    try {
      return await launch(port, mode, opts.env ?? {}, opts.app ?? 'crm_api:app');
    } catch (err) {
      lastError = err as Error;
      if (!/address already in use|Errno 98/i.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error('uvicorn did not start');
}

async function launch(port: number, mode: UvicornMode, env: Record<string, string>, appName: string): Promise<RealCrmApi> {
  const args = ['-m', 'uvicorn', appName, '--app-dir', APP_DIR, '--host', '127.0.0.1', '--port', String(port), '--ws', 'wsproto', '--no-use-colors', ...MODE_ARGS[mode]];
  // No bytecode next to the app: nothing to commit or clean up in the work tree.
  const child = spawn(PYTHON, args, { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(child, url, () => out);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  const direct = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    if (!res.ok) throw new Error(`GET ${path} straight to the app: ${res.status}`);
    return (await res.json()) as T;
  };
  return {
    url,
    port,
    mode,
    output: () => out,
    requests: () => direct<AppRequest[]>('/_test/requests'),
    clearRequests: async () => {
      await fetch(`${url}/_test/requests`, { method: 'DELETE' });
    },
    direct,
    stop: () => stopChild(child),
  };
}

async function waitReady(child: ChildProcess, url: string, output: () => string): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`uvicorn exited before it was ready:\n${output()}`);
    try {
      const res = await fetch(`${url}/_test/requests`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`uvicorn not ready within ${READY_TIMEOUT_MS} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
