import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Two secrets (a form's CSRF token and its cookie, a webhook verify token) equal in constant
 * time whatever their lengths: both sides are hashed to the same size first. An empty secret
 * equals nothing.
 */
export function equalSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length > 0;
}
