import type { RouteConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { OpenApiSpecError } from './errors.js';
import { loadSpecDocument } from './source.js';
import { ApiSpec } from './spec.js';

type SpecRoute = Pick<RouteConfig, 'name' | 'openapi'>;

async function loadOne(route: SpecRoute): Promise<ApiSpec> {
  const source = route.openapi?.spec as string;
  const doc = await loadSpecDocument(source);
  try {
    return ApiSpec.compile(doc, source);
  } catch (err) {
    if (err instanceof OpenApiSpecError) throw err;
    // A spec hostile enough to break the compiler itself (a stack overflow) is still a spec error.
    throw new OpenApiSpecError(source, `cannot be compiled: ${(err as Error).message}`);
  }
}

/**
 * The compiled OpenAPI spec of every route that has `openapi:`, loaded before the gateway
 * serves (a spec that cannot be used stops startup) and again on SIGHUP, route by route: a
 * reload that fails keeps that route's previous spec and says so in the security log. The
 * validation step reads `current` on every request, so a reload takes effect at once.
 */
export class OpenApiSpecs {
  private reloading: Promise<boolean> | undefined;

  private constructor(
    private readonly routes: readonly SpecRoute[],
    private readonly specs: Map<string, ApiSpec>,
    private readonly log: Logger,
  ) {}

  /** Loads every route's spec; throws one OpenApiSpecError listing each that failed. */
  static async load(routes: readonly SpecRoute[], log: Logger): Promise<OpenApiSpecs> {
    const withSpec = routes.filter((r) => r.openapi);
    const results = await Promise.allSettled(withSpec.map(loadOne));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ route: withSpec[i]?.name ?? '?', error: r.reason as Error }] : []));
    if (failed.length > 0) throw OpenApiSpecError.forRoutes(failed);
    const specs = new Map<string, ApiSpec>();
    results.forEach((r, i) => {
      const route = withSpec[i] as SpecRoute;
      const spec = (r as PromiseFulfilledResult<ApiSpec>).value;
      specs.set(route.name, spec);
      log.app('info', 'OpenAPI spec loaded', { route: route.name, source: spec.source, version: spec.version, operations: spec.operationCount, mode: route.openapi?.mode });
    });
    return new OpenApiSpecs(withSpec, specs, log);
  }

  has(route: string): boolean {
    return this.specs.has(route);
  }

  /** The route's spec in force now. */
  current(route: string): ApiSpec | undefined {
    return this.specs.get(route);
  }

  /** Loads every spec again; true when all were replaced. One reload at a time: a second call joins the first. */
  reload(reason: string): Promise<boolean> {
    this.reloading ??= this.reloadAll(reason).finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async reloadAll(reason: string): Promise<boolean> {
    let all = true;
    await Promise.all(
      this.routes.map(async (route) => {
        try {
          const spec = await loadOne(route);
          this.specs.set(route.name, spec);
          this.log.security('openapi.reloaded', { reason, route: route.name, source: spec.source, version: spec.version, operations: spec.operationCount });
        } catch (err) {
          all = false;
          const error = (err as Error).message;
          this.log.security('openapi.reload_failed', { reason, route: route.name, source: route.openapi?.spec, error });
          this.log.app('error', 'OpenAPI spec reload failed; keeping the previous spec', { route: route.name, error });
        }
      }),
    );
    return all;
  }

  /** Reloads on SIGHUP (as the certificate does); returns what stops listening. */
  reloadOnSighup(): () => void {
    const onHup = (): void => void this.reload('SIGHUP');
    process.on('SIGHUP', onHup);
    return () => process.off('SIGHUP', onHup);
  }
}
