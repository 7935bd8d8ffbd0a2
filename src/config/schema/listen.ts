/** `listen`: the addresses and ports the gateway binds. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { port } from './fields.js';

export const listenSchema = z
  .strictObject({
    address: z.string().default(DEFAULTS.listenAddress),
    httpsPort: port.default(DEFAULTS.httpsPort),
    httpPort: port.default(DEFAULTS.httpPort),
    adminAddress: z.string().default(DEFAULTS.adminAddress),
    adminPort: port.default(DEFAULTS.adminPort),
    /** The port clients see for HTTPS, used in redirects (e.g. 443 behind a port forward). */
    publicHttpsPort: port.optional(),
  })
  .prefault({});
