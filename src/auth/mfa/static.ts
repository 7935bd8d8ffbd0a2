import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const WEBAUTHN_SCRIPT_PATH = '/auth/mfa/static/webauthn.js';
export const MFA_SCRIPT_PATH = '/auth/mfa/static/mfa.js';

/**
 * The pages' own script: each passkey button fetches its ceremony's options, runs it through
 * @simplewebauthn/browser, and posts the credential with an ordinary form, so the answer (a
 * redirect with the session's cookies, or a refusal page) is a navigation like any sign-in.
 * Served from the gateway's origin (CSP `script-src 'self'`), never inline.
 */
const MFA_SCRIPT = `(function () {
  'use strict';
  var W = window.SimpleWebAuthnBrowser;
  var buttons = document.querySelectorAll('[data-passkey]');
  Array.prototype.forEach.call(buttons, function (button) {
    button.addEventListener('click', function () {
      var form = document.getElementById(button.getAttribute('data-form'));
      var failed = document.getElementById('passkey-failed');
      button.disabled = true;
      fetch(button.getAttribute('data-options'), { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (res) { if (!res.ok) throw new Error('options: ' + res.status); return res.json(); })
        .then(function (optionsJSON) {
          return button.getAttribute('data-passkey') === 'register' ? W.startRegistration({ optionsJSON: optionsJSON }) : W.startAuthentication({ optionsJSON: optionsJSON });
        })
        .then(function (credential) {
          form.elements.credential.value = JSON.stringify(credential);
          form.submit();
        })
        .catch(function (e) {
          if (window.console) console.warn('passkey: ' + (e && e.name) + ': ' + (e && e.message));
          button.disabled = false;
          if (failed) failed.hidden = false;
        });
    });
  });
})();
`;

export interface StaticScript {
  readonly body: string;
  readonly etag: string;
}

const etag = (body: string): string => `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;

export const mfaScript: StaticScript = { body: MFA_SCRIPT, etag: etag(MFA_SCRIPT) };

/** @simplewebauthn/browser's UMD bundle (global `SimpleWebAuthnBrowser`), read from node_modules (the endpoints keep it once read). */
export async function loadWebauthnScript(): Promise<StaticScript> {
  const main = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  const body = await readFile(join(dirname(main), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
  return { body, etag: etag(body) };
}
