import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { testCertificate } from './harness.js';

/** Debian's Chromium (`npm test` installs it); a downloaded browser is never used. */
export const CHROMIUM = '/usr/bin/chromium';
/** NSS's command-line tool (Debian libnss3-tools): imports the test CA into the browser's trust store. */
const CERTUTIL = '/usr/bin/certutil';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  // Loopback over TCP only: no QUIC attempts, no first-run, update or sync traffic in the counts.
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
/** Default wait of each step (click, navigation) in a context from newContext(). */
export const STEP_TIMEOUT_MS = 10_000;
const LAUNCH_TIMEOUT_MS = 30_000;

export interface LaunchOptions {
  /**
   * How the browser accepts the test certificate. `ca` (the default): the harness's development
   * CA is imported into a throw-away NSS database, so the certificate is valid as far as
   * Chromium knows. `ignore-errors`: contexts ignore certificate errors, as the tests did
   * before; Chromium then caches nothing over HTTPS. Only for measuring that difference.
   */
  trust?: 'ca' | 'ignore-errors';
}

export interface TestBrowser {
  readonly browser: Browser;
  /** A new context (its own cookies, storage and cache) with STEP_TIMEOUT_MS as default timeouts. */
  newContext(opts?: BrowserContextOptions): Promise<BrowserContext>;
  /** Closes the browser and removes its throw-away HOME. */
  close(): Promise<void>;
}

/**
 * Chromium on Linux reads its trusted roots from `$HOME/.pki/nssdb` (not from --user-data-dir),
 * so each launch gets a HOME of its own with only the test CA added (and no other root of the
 * user running the tests). Why not
 * --ignore-certificate-errors: Chromium keeps no HTTP cache entry for a response that came with
 * a certificate error, so such tests would not see what a real user's browser does.
 */
function browserHome(caFile: string | undefined): string {
  if (!existsSync(CERTUTIL)) throw new Error(`${CERTUTIL} is missing: apt-get install -y libnss3-tools (npm test installs it when run as root)`);
  const home = mkdtempSync(join(tmpdir(), 'crm-gw-browser-'));
  const db = join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true, mode: 0o700 });
  execFileSync(CERTUTIL, ['-N', '--empty-password', '-d', `sql:${db}`]);
  // C,, = a trusted CA for TLS servers only (not for mail or code signing).
  if (caFile) execFileSync(CERTUTIL, ['-A', '-t', 'C,,', '-n', 'crm-gateway-test-ca', '-i', caFile, '-d', `sql:${db}`]);
  return home;
}

/**
 * Headless Debian Chromium that trusts the harness certificate (testCertificate()) through its
 * development CA. *.localhost resolves to loopback in Chromium itself, so no resolver rules.
 */
export async function launchBrowser(opts: LaunchOptions = {}): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (npm test installs it when run as root)`);
  const trust = opts.trust ?? 'ca';
  // ignore-errors gets an empty trust store: the certificate error must really be there.
  const home = browserHome(trust === 'ca' ? (await testCertificate()).ca : undefined);
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS, env: { ...process.env, HOME: home } });
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
  return {
    browser,
    newContext: async (contextOpts = {}) => {
      const context = await browser.newContext({ ...contextOpts, ignoreHTTPSErrors: trust === 'ignore-errors' });
      context.setDefaultTimeout(STEP_TIMEOUT_MS);
      context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
      return context;
    },
    close: async () => {
      await browser.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Fills the gateway's login form the page is on and waits for the redirect that follows. */
export async function signInAtGateway(page: Page, user: string, password: string): Promise<void> {
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/**
 * Collects the page's CSP violations in `window.__cspViolations` ("directive blockedURI" each),
 * from every document the page loads.
 */
export async function recordCspViolations(page: Page): Promise<void> {
  // Injected by the debugger, so the page's own CSP does not apply to this listener.
  await page.addInitScript('window.__cspViolations = []; document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));');
}

/** A fresh context (closed after test `t`) and page on `browser`, recording CSP violations. */
export async function openPage(
  browser: TestBrowser,
  t: { after(fn: () => Promise<void>): void },
  contextOptions?: BrowserContextOptions,
): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext(contextOptions);
  t.after(() => context.close());
  const page = await context.newPage();
  await recordCspViolations(page);
  return { page, context };
}
