// The gateway exactly as dist/main.js wires it (same config, stores, auth, listeners), except
// that its logger discards every line: the "audit logging off" row of the benchmark, to
// attribute what the audit log costs. Benchmark only; the real gateway has no such switch.
import { processEnv } from '../dist/config/env.js';
import { prepare } from '../dist/bootstrap.js';
import { createRedis } from '../dist/stores/redis.js';
import { createPostgres } from '../dist/stores/postgres.js';
import { createAuthService } from '../dist/auth/service.js';
import { startGateway } from '../dist/server/start.js';

const discard = { access() {}, security() {}, app() {} };
const { config } = await prepare(processEnv(), discard);
const redis = await createRedis(config, discard);
const postgres = await createPostgres(config, discard);
const auth = await createAuthService(config, { log: discard, redis, postgres });
const running = await startGateway(config, { log: discard, redis, postgres, auth });
process.stderr.write(`${JSON.stringify({ message: 'gateway listening', https: running.ports.https })}\n`);
const stop = () => {
  running
    .shutdown()
    .then(() => auth?.close())
    .then(() => Promise.allSettled([redis?.quit(), postgres?.end()]))
    .finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
