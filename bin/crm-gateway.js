#!/usr/bin/env node
// The bin runs the compiled CLI; `npm ci` builds it through the `prepare` script.
import('../dist/cli/main.js').then((cli) => cli.run(process.argv.slice(2))).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.stack : err); process.exitCode = 1; },
);
