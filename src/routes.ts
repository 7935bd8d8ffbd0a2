import type { RouteConfig } from './config/schema.js';
import type { Step } from './step.js';

/** A route with its policy chain built once at startup. */
export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  readonly target: URL;
  readonly steps: readonly Step[];
}
