/** A spec that cannot be used: at startup it stops the gateway, on SIGHUP the old spec stays. */
export class OpenApiSpecError extends Error {
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`OpenAPI spec ${source}: ${reason}`);
    this.name = 'OpenApiSpecError';
  }

  /** Every route whose spec failed, one line each, as startup reports them. */
  static forRoutes(failures: readonly { route: string; error: Error }[]): OpenApiSpecError {
    const err = new OpenApiSpecError(failures.map((f) => f.route).join(', '), '');
    err.message = `OpenAPI spec${failures.length > 1 ? 's' : ''} that cannot be used:\n${failures.map((f) => `  - route ${f.route}: ${f.error.message}`).join('\n')}`;
    return err;
  }
}
