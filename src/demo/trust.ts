import { existsSync } from 'node:fs';
import { devCaPaths, type CertificateInfo } from '../tls/certificates.js';

/**
 * What the demo says about its certificate. A browser that merely clicks through the warning
 * keeps nothing in its HTTP cache (Chromium drops responses that came with a certificate
 * error), so every page comes again in full; importing the development CA once avoids that.
 */
export function trustInstructions(certFile: string, info: CertificateInfo): { summary: string; steps: string; curlTrust: string } {
  const ca = devCaPaths(certFile).cert;
  if (info.developmentCa && existsSync(ca)) {
    return {
      summary: `certificate from the development CA ${ca}`,
      steps: `
Trust the development CA once (then browsers cache and show no warning; it never leaves this machine):
  Chromium/Chrome on Linux:  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n crm-gateway-dev -i ${ca}
  macOS:                     sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${ca}
  Windows:                   certutil -user -addstore Root ${ca}
Remove it again with: certutil -d sql:$HOME/.pki/nssdb -D -n crm-gateway-dev (Linux)
`,
      curlTrust: `--cacert ${ca}`,
    };
  }
  // An operator's certificate, or an old self-signed one from before the development CA.
  const hint = info.selfSigned ? `; delete ${certFile} and its key to get one from a development CA you can trust` : '';
  return { summary: `certificate ${certFile}${info.selfSigned ? ', self-signed: your browser will ask you to accept it' : ''}${hint}`, steps: '', curlTrust: info.selfSigned ? '-k' : '' };
}
