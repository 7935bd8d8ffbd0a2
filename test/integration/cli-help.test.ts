import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands/index.js';
import type { Command } from '../../src/cli/command.js';
import { runCli, type CliResult } from '../helpers/cli.js';

/**
 * Issue 18, item 11: `--help` on every command and subcommand prints its usage and exits 0
 * without running anything (`audit search --help` ran the search; `backup`, `secrets`,
 * `doctor --help` printed Node's parseArgs error; `users`/`tokens --help` exited 2), and an
 * unknown option is refused with one line and exit 2 (`audit search --bogus` printed every
 * line of the logs). Run through the real CLI, one row per command line.
 */

const rows: string[][] = [];
const commands = new Map<string, Command>();
let env: Record<string, string>;

before(async () => {
  assert.ok(existsSync(join(process.cwd(), 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
  for (const [name, load] of COMMANDS) {
    const command = await load();
    commands.set(name, command);
    if (command.subcommands) for (const sub of Object.keys(command.subcommands)) rows.push([name, sub]);
    rows.push([name]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'crm-gw-cli-help-'));
  // Logs a search would print, a config a command would load: --help must touch neither.
  writeFileSync(join(dir, 'access-2026-01-01.log'), `${JSON.stringify({ time: '2026-01-01T00:00:00.000Z', status: 200, path: '/would-be-printed' })}\n`);
  env = { LOG_DIR: dir, GATEWAY_CONFIG: join(dir, 'none.yaml'), DATA_DIR: dir, BACKUP_DIR: dir };
});

/** At most this many CLI processes at once (the machine is shared). */
const PARALLEL = 3;

async function each(lines: string[][], run: (line: string[]) => Promise<void>): Promise<void> {
  const queue = [...lines];
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      for (let line = queue.shift(); line; line = queue.shift()) await run(line);
    }),
  );
}

test('the table covers every registered command and subcommand, including the ones the issue names', () => {
  const lines = rows.map((r) => r.join(' '));
  for (const l of ['audit search', 'audit verify', 'audit report', 'backup', 'backup run', 'secrets', 'doctor', 'users', 'users add', 'tokens', 'tokens issue', 'access report', 'start', 'setup', 'migrate', 'config check']) {
    assert.ok(lines.includes(l), `${l} is in the table`);
  }
});

test('--help and -h print the usage on stdout and exit 0, for every command and subcommand', async () => {
  const failures: string[] = [];
  await each(rows, async (line) => {
    for (const flag of ['--help', '-h']) {
      const r: CliResult = await runCli([...line, flag], env);
      const what = `${line.join(' ')} ${flag}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      if (r.code !== 0) failures.push(what);
      else if (!r.stdout.startsWith(`usage: crm-gateway ${line.join(' ')}`)) failures.push(`usage not first: ${what}`);
      else if (r.stderr !== '') failures.push(`stderr not empty: ${what}`);
      else if (r.stdout.includes('/would-be-printed')) failures.push(`it ran: ${what}`);
    }
  });
  assert.deepEqual(failures, []);
});

test('--help after other options and positionals still only prints the usage', async () => {
  const r = await runCli(['audit', 'search', '--since', '1d', '--json', '--help'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: crm-gateway audit search/);
  assert.doesNotMatch(r.stdout, /would-be-printed/);
  const sub = await runCli(['help', 'audit'], env);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /usage: crm-gateway audit verify[\s\S]*usage: crm-gateway audit search[\s\S]*usage: crm-gateway audit report/);
});

test('an unknown option is refused with one line and exit 2, before the command runs', async () => {
  const failures: string[] = [];
  await each(rows, async (line) => {
    const r = await runCli([...line, '--bogus'], env);
    const what = `${line.join(' ')} --bogus: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    // A command needing a subcommand names the problem with the subcommand first.
    const expected = commands.get(line[0] as string)?.subcommands && line.length === 1 ? /^crm-gateway: error: unknown \w+ command option --bogus/ : /^crm-gateway: error: unknown option --bogus \(see crm-gateway [\w -]+ --help\)$/;
    if (r.code !== 2) failures.push(what);
    else if (r.stdout !== '') failures.push(`stdout not empty: ${what}`);
    else if (r.stderr.split('\n').filter(Boolean).length !== 1 || !expected.test(r.stderr.trim())) failures.push(`not one error line: ${what}`);
  });
  assert.deepEqual(failures, []);
});

test('an option missing its value, or given one it does not take, is one line and exit 2', async () => {
  const missing = await runCli(['audit', 'search', '--limit'], env);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, 'crm-gateway: error: --limit needs a value (see crm-gateway audit search --help)\n');
  const extra = await runCli(['audit', 'search', '--json=yes'], env);
  assert.equal(extra.code, 2);
  assert.equal(extra.stderr, 'crm-gateway: error: --json takes no value (see crm-gateway audit search --help)\n');
});

test('an unknown command and an unknown subcommand exit 2 with the error prefix', async () => {
  const cmd = await runCli(['bogus'], env);
  assert.equal(cmd.code, 2);
  assert.match(cmd.stderr, /^crm-gateway: error: unknown command bogus\nusage: crm-gateway <command>/);
  const sub = await runCli(['users', 'bogus'], env);
  assert.equal(sub.code, 2);
  assert.equal(sub.stderr, 'crm-gateway: error: unknown users command bogus (add, list, disable, enable, set-password, set-roles, show, reset-factors) (see crm-gateway users --help)\n');
});
