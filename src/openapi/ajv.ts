import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export type Ajv = InstanceType<typeof Ajv2020.default>;

/**
 * An ajv for one spec. `strict: false` lets OpenAPI's own keywords (example, discriminator,
 * xml, externalDocs, deprecated) through as annotations; no `allErrors`: the first error is
 * enough to refuse and cheaper to find. No `loadSchema`: a ref ajv cannot resolve from what it
 * was given is a compile error, never a fetch. Parameters arrive as strings: `coerce` turns
 * them into the declared types (and a lone value into a one-item list); bodies are never coerced.
 */
export function createAjv(coerce: boolean): Ajv {
  // ajv and ajv-formats are CommonJS: under NodeNext their classes sit on `default`.
  const ajv = new Ajv2020.default({
    strict: false,
    allErrors: false,
    coerceTypes: coerce ? 'array' : false,
    useDefaults: false,
    removeAdditional: false,
    validateFormats: true,
    logger: false,
    unicodeRegExp: true,
  });
  addFormats.default(ajv);
  return ajv;
}
