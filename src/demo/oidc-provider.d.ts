/**
 * The few parts of oidc-provider 9 (a devDependency, untyped) that the tests' provider
 * (test/helpers/oidc-provider.ts) and `npm run demo -- --oidc` (src/demo/oidc-demo.ts) use.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface ProviderContext {
    path: string;
    body: unknown;
    type: string;
  }

  class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): void;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    proxy: boolean;
  }

  export default Provider;
  export { Provider };
}
