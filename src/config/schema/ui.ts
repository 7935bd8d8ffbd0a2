/** `ui`: the gateway's own pages (sign-in, sign-out, errors). */
import { z } from 'zod';
import { DEFAULT_LANGUAGE, LANGUAGES } from '../../i18n/language.js';

export const uiSchema = z
  .strictObject({
    /** Their language when the browser's Accept-Language names neither es nor en. */
    defaultLanguage: z.enum(LANGUAGES).default(DEFAULT_LANGUAGE),
  })
  .prefault({});
