#!/usr/bin/env node
// `npm run bench` first: installs nginx, caddy, wrk and redis-server from Debian where it can.
// Unlike `npm test` it never stops: bench/run.mjs skips the rows whose tool is absent and says so.
import { BENCH_NEEDS, ensurePrerequisites } from './prereqs.mjs';

const { message } = ensurePrerequisites(BENCH_NEEDS, 'npm run bench');
if (message) console.error(`${message} (their rows are skipped)`);
