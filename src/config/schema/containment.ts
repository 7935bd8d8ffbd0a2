/** `containment`: blocks (`crm-gateway block …`) and automatic containment; docs/incident-response.md. */
import { z } from 'zod';
import { DEFAULTS } from '../defaults.js';
import { cidrList, duration } from './fields.js';

/**
 * Which alert may block what (alerts of src/audit/alerts.ts), and why not otherwise: a block must
 * fall on whoever caused the alert, never on someone an attacker can name. The reason, or
 * undefined when the pair is safe.
 * - `block: user` only after a successful sign-in (`new_ip_for_user`): the failure alerts name
 *   whatever user name was typed, so blocking it would let anyone lock any account out.
 * - `block: ip` only when the alert's subject is the offending address (the per-address counts):
 *   the per-account alerts carry the address of whoever made the Nth failure, so an attacker
 *   keeps an account one failure short and its owner's next typo blocks their own network.
 */
function unsafeContainment(on: string, block: 'ip' | 'user'): string | undefined {
  const byAddress = ['failed_logins_ip', 'suspicious_rate_limited', 'suspicious_rejected_paths'];
  const bySignIn = ['new_ip_for_user'];
  if (block === 'user') {
    if (bySignIn.includes(on)) return undefined;
    if (on === 'failed_logins_user' || on === 'account_locked') {
      return `alert ${on} names the user name an unauthenticated client typed: blocking it would let anyone block any account; block: user only for ${bySignIn.join(', ')} (after a successful sign-in)`;
    }
    return `alert ${on} names no signed-in user; block: user only for ${bySignIn.join(', ')}`;
  }
  if (byAddress.includes(on)) return undefined;
  if (on === 'failed_logins_user' || on === 'account_locked') {
    return `alert ${on} counts failures against an account from any address: its address is whoever made the last failure (an attacker keeps the count one short, the owner's typo blocks their network); block: ip only for ${byAddress.join(', ')}`;
  }
  return `alert ${on} is not about an offending address; block: ip only for ${byAddress.join(', ')}`;
}

/** An alert turned into a block. */
const ruleSchema = z
  .strictObject({
    on: z.enum(['failed_logins_ip', 'failed_logins_user', 'account_locked', 'new_ip_for_user', 'suspicious_rate_limited', 'suspicious_rejected_paths']),
    block: z.enum(['ip', 'user']),
    for: duration.pipe(z.number().min(1_000, 'at least 1s')),
    /** Blocks this rule may make in any minute; alerts past it are logged, not acted on. */
    maxPerMinute: z.number().int().min(1).max(1_000).default(DEFAULTS.containmentRuleMaxPerMinute),
  })
  .superRefine((r, ctx) => {
    const why = unsafeContainment(r.on, r.block);
    if (why) ctx.addIssue({ code: 'custom', path: ['block'], message: why });
  });

export const containmentSchema = z
  .strictObject({
    /** The longest block the CLI or a rule may set. */
    maxDuration: duration.prefault(DEFAULTS.containmentMaxDuration),
    /** Networks never blocked automatically (the administrators' own); TRUSTED_PROXIES never are either. */
    neverBlock: cidrList.prefault([]),
    /** Alerts turned into blocks (opt-in; none by default). */
    rules: z.array(ruleSchema).default([]),
  })
  .superRefine((c, ctx) => {
    c.rules.forEach((r, i) => {
      if (r.for > c.maxDuration) ctx.addIssue({ code: 'custom', path: ['rules', i, 'for'], message: 'longer than containment.maxDuration' });
    });
  })
  .prefault({});
