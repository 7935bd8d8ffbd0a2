import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../../context.js';
import { GatewayError, isGatewayError } from '../../errors.js';
import { readForm } from '../form.js';
import { loginAttempt } from '../lockout.js';
import { ACCESS_COOKIE, parseCookies, singleCookie } from '../cookies.js';
import { LOGIN_PATH } from '../challenge.js';
import type { AuthEndpointKit, AuthHandler, SignInGate } from '../paths.js';
import type { Factor, SignedIn } from '../sessions/types.js';
import { sessionHosts } from '../site-clear.js';
import { accountBlocked } from '../../containment/enforce.js';
import { isOidcSubject } from '../oidc/rules.js';
import { hasSecondFactor } from '../store/factors.js';
import type { Principal } from '../../context.js';
import type { Page } from '../pages.js';
import { codesPage, challengePage, enrolPage, passkeySignInPage, sendMfaPage } from './pages.js';
import { PendingSignIns, type PendingSignIn } from './pending.js';
import { provedSecondFactor, returnRouteRequiresMfa, rolesRequireMfa } from './policy.js';
import { hashRecoveryCode, newRecoveryCodes } from './recovery.js';
import { MFA_SCRIPT_PATH, WEBAUTHN_SCRIPT_PATH, loadWebauthnScript, mfaScript, type StaticScript } from './static.js';
import { checkRecovery, checkTotp } from './verify.js';
import { Ceremonies, parseCredential, relyingParty, userHandle } from './webauthn.js';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';

/** The TOTP secret shown on the enrolment page waits this long for its confirming code. */
const ENROL_TTL_MS = 10 * 60_000;

/** Who is enrolling: the user of a pending sign-in that must enrol, or of a signed-in session. */
type Enroller = { user: string; pending: { id: string; state: PendingSignIn } } | { user: string; session: Principal };

/**
 * The second factor (issue 14, item 2), under `/auth/mfa`: the step between a first factor and the
 * session (TOTP code, recovery code or passkey), TOTP and passkey enrolment (forced when a role or
 * the return route needs a second factor and none is enrolled, or by choice from a session), and
 * a passkey sign-in of its own when `auth.passkeys.signIn`. Registers the sign-in gate that sends
 * a first factor here; every success ends in the kit's CompleteSignIn, never in cookies of its own.
 */
export function createMfaEndpoints(kit: AuthEndpointKit): AuthHandler {
  const { cfg, auth, log } = kit;
  const pending = new PendingSignIns(auth.kv);
  const origins = [...new Set([...sessionHosts(cfg), ...(kit.signInHost ? [kit.signInHost] : [])])].map((h) => kit.origin(h));
  const ceremonies = new Ceremonies(auth.kv, relyingParty(cfg, kit.signInHost || (sessionHosts(cfg)[0] ?? cfg.domain), origins));
  const routeNeedsMfa = returnRouteRequiresMfa(cfg);
  let webauthnBundle: Promise<StaticScript> | undefined;

  /**
   * After a first factor (password, OIDC): a user with a second factor enrolled, or whose roles or
   * return route require one, goes to /auth/mfa with a pending sign-in instead of a session.
   */
  const gate: SignInGate = async (ctx, res, who, rd) => {
    if (provedSecondFactor(who.factors)) return false;
    const enrolled = hasSecondFactor(await auth.factors.get(who.subject));
    const required = rolesRequireMfa(who.roles, cfg.auth) || routeNeedsMfa(rd, kit.thisHost(ctx));
    if (!enrolled && !required) return false;
    await pending.start(ctx, { who, rd, host: kit.thisHost(ctx), enrol: !enrolled });
    log.security('auth.mfa_challenged', { requestId: ctx.id, user: who.subject, factors: who.factors, enrol: !enrolled, clientIp: ctx.address?.client.address });
    ctx.reply.redirect(res, 303, enrolled ? '/auth/mfa' : '/auth/mfa/totp/enrol');
    return true;
  };
  kit.gate(gate);

  const show = (ctx: RequestContext, res: ServerResponse, status: number, page: Page, err?: GatewayError): void => {
    if (err) ctx.reply.fail(err);
    sendMfaPage(ctx, res, status, page, origins, err?.headers);
  };
  const lang = (ctx: RequestContext) => ctx.reply.language(ctx.req);

  /** Failures of codes count as failed logins (src/auth/lockout.ts) under `mfa:<user>`, which a right password does not clear. */
  const mfaAttempt = (ctx: RequestContext, user: string) => loginAttempt(`mfa:${user.slice(0, 64)}`, ctx.address?.client, ctx.id);

  /** The credential endpoints' limits, then the locks of the password and of the codes: AUTH_LOCKED (429) while either holds. */
  async function guard(ctx: RequestContext, user: string): Promise<void> {
    await kit.limits.login(ctx, user.slice(0, 64));
    try {
      await auth.lockout.check(loginAttempt(user.slice(0, 64), ctx.address?.client, ctx.id));
      await auth.lockout.check(mfaAttempt(ctx, user));
    } catch (err) {
      if (isGatewayError(err) && err.code === 'AUTH_LOCKED') log.security('auth.mfa_failed', { requestId: ctx.id, user, reason: 'locked', clientIp: ctx.address?.client.address });
      throw err;
    }
  }

  async function failed(ctx: RequestContext, user: string, reason: string, err: GatewayError): Promise<GatewayError> {
    await auth.lockout.failed(mfaAttempt(ctx, user), reason);
    log.security('auth.mfa_failed', { requestId: ctx.id, user, reason, code: err.code, detail: err.detail, clientIp: ctx.address?.client.address });
    return err;
  }

  /** Ends the pending sign-in (once) and hands the person, with the factor just proved, to CompleteSignIn. */
  async function succeed(ctx: RequestContext, id: string, state: PendingSignIn, who: SignedIn, factor: Factor): Promise<void> {
    if (!(await pending.finish(ctx, id))) throw new GatewayError('MFA_EXPIRED', 'pending sign-in already completed');
    const blocked = accountBlocked(kit.blocks, who.subject);
    if (blocked) throw blocked;
    // A local account is read again (disabled, or its roles changed, since the first factor). A
    // provider's person has no local record: the roles mapped at the callback minutes ago stand,
    // as they do for the session they are about to get (src/auth/service.ts readState).
    let roles = who.roles;
    if (!isOidcSubject(who.subject)) {
      const user = await auth.store.getUser(who.subject);
      if (!user || user.disabled) throw new GatewayError('AUTH_DISABLED', `${who.subject} is disabled or gone since the first factor`);
      roles = user.roles;
    }
    await auth.lockout.succeeded(mfaAttempt(ctx, who.subject));
    log.security('auth.mfa_succeeded', { requestId: ctx.id, user: who.subject, factor, clientIp: ctx.address?.client.address });
    await kit.complete(ctx, { ...who, roles: [...roles], factors: [...who.factors.filter((f) => f !== factor), factor] }, state.rd);
  }

  async function form(ctx: RequestContext, what: string): Promise<URLSearchParams> {
    if (ctx.req.method !== 'POST') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${ctx.path}`);
    const f = await readForm(ctx.req, what);
    if (!kit.formCsrfOk(ctx, f)) throw new GatewayError('CSRF_REJECTED', `${what} form CSRF token or Origin mismatch`);
    return f;
  }

  /** The signed-in session on this host, if its access token is good. */
  async function session(ctx: RequestContext): Promise<Principal | undefined> {
    const access = singleCookie(parseCookies(ctx.req.headers.cookie), ACCESS_COOKIE);
    if (typeof access !== 'string' || access === 'ambiguous') return undefined;
    try {
      const claims = await auth.tokens.verify(access);
      if (claims.typ !== 'session') return undefined;
      return await auth.principalFor(claims, 'session');
    } catch {
      return undefined;
    }
  }

  /**
   * Who may enrol here: a pending sign-in that must enrol, or a session whose user has no second
   * factor yet or proved one (a password-only session never replaces a factor someone else set).
   */
  async function enroller(ctx: RequestContext): Promise<Enroller | undefined> {
    const p = await pending.read(ctx, kit.thisHost(ctx));
    if (p?.state.who && p.state.enrol) return { user: p.state.who.subject, pending: p };
    const s = await session(ctx);
    if (!s) return undefined;
    if (hasSecondFactor(await auth.factors.get(s.subject)) && !provedSecondFactor(s.factors)) return undefined;
    return { user: s.subject, session: s };
  }

  async function needEnroller(ctx: RequestContext, res: ServerResponse): Promise<Enroller | undefined> {
    const e = await enroller(ctx);
    if (e) return e;
    if (ctx.req.method === 'GET') {
      ctx.reply.redirect(res, 303, `${LOGIN_PATH}?rd=${encodeURIComponent('/auth/mfa/totp/enrol')}`);
      return undefined;
    }
    throw new GatewayError('MFA_EXPIRED', 'no pending enrolment and no session that may enrol');
  }

  const ceremonyKey = (e: Enroller): string => ('pending' in e ? `p:${e.pending.id}` : `s:${e.user}:${e.session.tokenId ?? ''}`);

  async function challenge(ctx: RequestContext, res: ServerResponse, err?: GatewayError): Promise<void> {
    const p = await pending.need(ctx, kit.thisHost(ctx));
    const who = p.state.who;
    if (!who) throw new GatewayError('MFA_EXPIRED', 'pending passkey sign-in has no user');
    if (p.state.enrol) {
      ctx.reply.redirect(res, 303, '/auth/mfa/totp/enrol');
      return;
    }
    const f = await auth.factors.get(who.subject);
    show(ctx, res, err ? err.status : 200, challengePage(lang(ctx), { csrf: kit.freshCsrf(ctx), totp: f.totp !== undefined, passkeys: f.passkeys.length > 0, error: err }), err);
  }

  /** A refusal on the challenge step: shown on the page again (a CSRF failure or an expired step gets the plain refusal). */
  async function again(ctx: RequestContext, res: ServerResponse, err: unknown): Promise<void> {
    if (!isGatewayError(err) || err.code === 'CSRF_REJECTED' || err.code === 'MFA_EXPIRED' || err.status >= 500) throw err;
    await challenge(ctx, res, err);
  }

  async function totpStep(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const f = await form(ctx, 'second factor');
    const p = await pending.need(ctx, kit.thisHost(ctx));
    const who = p.state.who;
    if (!who || p.state.enrol) throw new GatewayError('MFA_EXPIRED', 'pending sign-in is not at its second factor');
    try {
      await guard(ctx, who.subject);
      const checked = await checkTotp(auth, who.subject, f.get('code') ?? '');
      if ('err' in checked) throw await failed(ctx, who.subject, checked.reason, checked.err);
    } catch (err) {
      await again(ctx, res, err);
      return;
    }
    await succeed(ctx, p.id, p.state, who, 'totp');
  }

  async function recoveryStep(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const f = await form(ctx, 'recovery code');
    const p = await pending.need(ctx, kit.thisHost(ctx));
    const who = p.state.who;
    if (!who || p.state.enrol) throw new GatewayError('MFA_EXPIRED', 'pending sign-in is not at its second factor');
    try {
      await guard(ctx, who.subject);
      const checked = await checkRecovery(auth, who.subject, f.get('code') ?? '');
      if ('err' in checked) throw await failed(ctx, who.subject, checked.reason, checked.err);
    } catch (err) {
      await again(ctx, res, err);
      return;
    }
    const left = (await auth.factors.get(who.subject)).recoveryHashes.length;
    log.security('auth.recovery_code_used', { requestId: ctx.id, user: who.subject, remaining: left, clientIp: ctx.address?.client.address });
    await succeed(ctx, p.id, p.state, who, 'recovery');
  }

  async function enrolPageFor(ctx: RequestContext, res: ServerResponse, user: string, secret: string, err?: GatewayError): Promise<void> {
    const [{ totpUri }, qrcode] = await Promise.all([import('./totp.js'), import('qrcode')]);
    const uri = totpUri(secret, user);
    const qrSvg = await qrcode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
    show(ctx, res, err ? err.status : 200, enrolPage(lang(ctx), { csrf: kit.freshCsrf(ctx), qrSvg, secret, uri, error: err }), err);
  }

  async function totpEnrol(ctx: RequestContext, res: ServerResponse): Promise<void> {
    if (ctx.req.method === 'GET' || ctx.req.method === 'HEAD') {
      const e = await needEnroller(ctx, res);
      if (!e) return;
      const { newTotpSecret } = await import('./totp.js');
      const secret = newTotpSecret();
      // Kept server-side (sealed) until a code confirms it: the page's key is never posted back.
      await auth.kv.set(`mfa:enrol:${e.user}`, auth.sealer.seal(secret, e.user), ENROL_TTL_MS);
      await enrolPageFor(ctx, res, e.user, secret);
      return;
    }
    const f = await form(ctx, 'totp enrolment');
    const e = await needEnroller(ctx, res);
    if (!e) return;
    const sealed = await auth.kv.get(`mfa:enrol:${e.user}`);
    const opened = sealed ? auth.sealer.open(sealed, e.user) : undefined;
    if (!opened) throw new GatewayError('MFA_EXPIRED', 'no TOTP secret waiting for confirmation');
    const { matchTotp } = await import('./totp.js');
    let step: number | undefined;
    try {
      await guard(ctx, e.user);
      step = matchTotp(opened.plain, (f.get('code') ?? '').trim());
      if (step === undefined) throw await failed(ctx, e.user, 'wrong totp code at enrolment', new GatewayError('MFA_INVALID', 'enrolment code matches no step'));
    } catch (err) {
      if (!isGatewayError(err) || err.status >= 500) throw err;
      await enrolPageFor(ctx, res, e.user, opened.plain, err);
      return;
    }
    if ((await auth.kv.getdel(`mfa:enrol:${e.user}`)) === undefined) throw new GatewayError('MFA_EXPIRED', 'enrolment confirmed twice');
    const codes = newRecoveryCodes();
    await auth.factors.enrolTotp(e.user, auth.sealer.seal(opened.plain, e.user), codes.map((c) => hashRecoveryCode(e.user, c) as string));
    // The confirming code is spent: it cannot also be the code of the next sign-in.
    await auth.factors.acceptTotpStep(e.user, step);
    await auth.lockout.succeeded(mfaAttempt(ctx, e.user));
    log.security('auth.mfa_enrolled', { requestId: ctx.id, user: e.user, factor: 'totp', recoveryCodes: codes.length, via: 'pending' in e ? 'sign-in' : 'session', clientIp: ctx.address?.client.address });
    await showCodes(ctx, res, e, 'totp', codes);
  }

  async function showCodes(ctx: RequestContext, res: ServerResponse, e: Enroller, proved: 'totp' | 'webauthn', codes: readonly string[]): Promise<void> {
    if ('pending' in e) {
      await pending.update(e.pending.id, { ...e.pending.state, proved });
      if (codes.length === 0) {
        await succeedEnrolled(ctx, e.pending.id);
        return;
      }
    } else if (codes.length === 0) {
      ctx.reply.redirect(res, 303, '/');
      return;
    }
    show(ctx, res, 200, codesPage(lang(ctx), { csrf: kit.freshCsrf(ctx), codes, next: 'pending' in e ? 'sign-in' : '/' }));
  }

  async function succeedEnrolled(ctx: RequestContext, id: string): Promise<void> {
    const p = await pending.need(ctx, kit.thisHost(ctx));
    if (p.id !== id || !p.state.who || !p.state.proved) throw new GatewayError('MFA_EXPIRED', 'no enrolment proved in this sign-in');
    await succeed(ctx, p.id, p.state, p.state.who, p.state.proved);
  }

  async function done(ctx: RequestContext): Promise<void> {
    await form(ctx, 'enrolment done');
    const p = await pending.need(ctx, kit.thisHost(ctx));
    await succeedEnrolled(ctx, p.id);
  }

  function json(ctx: RequestContext, res: ServerResponse, value: unknown): void {
    ctx.reply.answer(res, 200, { body: { contentType: 'application/json', body: JSON.stringify(value) }, headers: { 'cache-control': 'no-store' } });
  }

  async function passkeyOptions(ctx: RequestContext, res: ServerResponse): Promise<void> {
    if (ctx.req.method !== 'GET') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${ctx.path}`);
    const query = new URLSearchParams(ctx.target?.query ?? '');
    const kind = query.get('for');
    if (kind === 'register') {
      const e = await enroller(ctx);
      if (!e) throw new GatewayError('MFA_EXPIRED', 'no pending enrolment and no session that may enrol');
      const existing = (await auth.factors.get(e.user)).passkeys;
      json(ctx, res, await ceremonies.registrationOptions(ceremonyKey(e), e.user, existing, cfg.auth.passkeys.signIn ? 'required' : 'preferred'));
      return;
    }
    if (kind === 'signin') {
      if (!cfg.auth.passkeys.signIn) throw new GatewayError('ROUTE_NOT_FOUND', 'passkey sign-in is off (auth.passkeys.signIn)');
      // Anyone may ask (no user yet): each ask stores a challenge, so it spends the address's sign-in budget.
      await kit.limits.login(ctx);
      const id = await pending.start(ctx, { rd: kit.returnTo(ctx, query.get('rd')), host: kit.thisHost(ctx), enrol: false });
      json(ctx, res, await ceremonies.authenticationOptions(`p:${id}`, []));
      return;
    }
    if (kind !== 'auth') throw new GatewayError('BAD_REQUEST', 'for must be auth, register or signin');
    const p = await pending.need(ctx, kit.thisHost(ctx));
    if (!p.state.who || p.state.enrol) throw new GatewayError('MFA_EXPIRED', 'pending sign-in is not at its second factor');
    const passkeys = (await auth.factors.get(p.state.who.subject)).passkeys;
    if (passkeys.length === 0) throw new GatewayError('PASSKEY_INVALID', 'user has no passkey');
    json(ctx, res, await ceremonies.authenticationOptions(`p:${p.id}`, passkeys));
  }

  async function passkeyVerify(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const f = await form(ctx, 'passkey');
    const p = await pending.need(ctx, kit.thisHost(ctx));
    const who = p.state.who;
    const signIn = who === undefined;
    let user: string | undefined = who?.subject;
    try {
      const response = parseCredential<AuthenticationResponseJSON>(f.get('credential'));
      const passkey = response.id === response.rawId ? await auth.factors.passkey(response.id) : undefined;
      user ??= passkey?.user;
      if (user) await guard(ctx, user);
      else await kit.limits.login(ctx);
      const name = user ?? '(unknown passkey)';
      if (!passkey || passkey.user !== user) throw await failed(ctx, name, 'unknown passkey', new GatewayError('PASSKEY_INVALID', `credential ${response.id.slice(0, 16)} is not ${name}'s`));
      const handle = response.response.userHandle;
      if (signIn && handle !== undefined && handle !== Buffer.from(userHandle(passkey.user)).toString('base64url')) {
        throw await failed(ctx, name, 'passkey user handle mismatch', new GatewayError('PASSKEY_INVALID', 'user handle is not the credential owner'));
      }
      let counter: number;
      try {
        counter = await ceremonies.authenticate(`p:${p.id}`, passkey, response);
      } catch (err) {
        if (isGatewayError(err) && err.code === 'PASSKEY_INVALID') throw await failed(ctx, name, 'passkey assertion refused', err);
        throw err;
      }
      if (!(await auth.factors.usePasskey(passkey.id, passkey.counter, counter))) throw await failed(ctx, name, 'passkey counter raced', new GatewayError('PASSKEY_INVALID', 'counter moved by another use'));
    } catch (err) {
      if (!isGatewayError(err) || err.code === 'CSRF_REJECTED' || err.status >= 500) throw err;
      if (signIn) {
        show(ctx, res, err.status, passkeySignInPage(lang(ctx), { csrf: kit.freshCsrf(ctx), rd: p.state.rd, error: err }), err);
        return;
      }
      await again(ctx, res, err);
      return;
    }
    if (!signIn) {
      await succeed(ctx, p.id, p.state, who, 'webauthn');
      return;
    }
    const record = await auth.store.getUser(user as string);
    if (!record || record.disabled) throw new GatewayError('AUTH_DISABLED', `passkey of ${String(user)}: user disabled or gone`);
    await succeed(ctx, p.id, p.state, { subject: record.name, roles: [...record.roles], factors: [], method: 'passkey' }, 'webauthn');
  }

  async function passkeyRegister(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const f = await form(ctx, 'passkey registration');
    const e = await enroller(ctx);
    if (!e) throw new GatewayError('MFA_EXPIRED', 'no pending enrolment and no session that may enrol');
    const passkey = await ceremonies.register(ceremonyKey(e), e.user, parseCredential<RegistrationResponseJSON>(f.get('credential'))).catch(async (err: unknown) => {
      if (isGatewayError(err) && err.code === 'PASSKEY_INVALID') throw await failed(ctx, e.user, 'passkey registration refused', err);
      throw err;
    });
    await auth.factors.addPasskey(passkey);
    const had = (await auth.factors.get(e.user)).recoveryHashes.length > 0;
    const codes = had ? [] : newRecoveryCodes();
    if (!had) await auth.factors.setRecoveryCodes(e.user, codes.map((c) => hashRecoveryCode(e.user, c) as string));
    log.security('auth.passkey_registered', { requestId: ctx.id, user: e.user, credentialId: passkey.id.slice(0, 16), recoveryCodes: codes.length, via: 'pending' in e ? 'sign-in' : 'session', clientIp: ctx.address?.client.address });
    await showCodes(ctx, res, e, 'webauthn', codes);
  }

  async function passkeyPage(ctx: RequestContext, res: ServerResponse): Promise<void> {
    if (!cfg.auth.passkeys.signIn) throw new GatewayError('ROUTE_NOT_FOUND', 'passkey sign-in is off (auth.passkeys.signIn)');
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${ctx.path}`);
    const rd = kit.returnTo(ctx, new URLSearchParams(ctx.target?.query ?? '').get('rd'));
    show(ctx, res, 200, passkeySignInPage(lang(ctx), { csrf: kit.freshCsrf(ctx), rd }));
  }

  async function script(ctx: RequestContext, res: ServerResponse, which: 'mfa' | 'webauthn'): Promise<void> {
    if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} ${ctx.path}`);
    const s = which === 'mfa' ? mfaScript : await (webauthnBundle ??= loadWebauthnScript());
    ctx.reply.answer(res, 200, { body: { contentType: 'text/javascript; charset=utf-8', body: s.body }, headers: { 'cache-control': 'no-cache', etag: s.etag, 'x-content-type-options': 'nosniff' } });
  }

  return async (ctx, res) => {
    switch (ctx.path) {
      case '/auth/mfa':
        if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') throw new GatewayError('METHOD_NOT_ALLOWED', `${ctx.req.method} /auth/mfa`);
        return challenge(ctx, res);
      case '/auth/mfa/totp':
        return totpStep(ctx, res);
      case '/auth/mfa/recovery':
        return recoveryStep(ctx, res);
      case '/auth/mfa/totp/enrol':
        return totpEnrol(ctx, res);
      case '/auth/mfa/done':
        return done(ctx);
      case '/auth/mfa/passkey':
        return passkeyPage(ctx, res);
      case '/auth/mfa/passkey/options':
        return passkeyOptions(ctx, res);
      case '/auth/mfa/passkey/verify':
        return passkeyVerify(ctx, res);
      case '/auth/mfa/passkey/register':
        return passkeyRegister(ctx, res);
      case MFA_SCRIPT_PATH:
        return script(ctx, res, 'mfa');
      case WEBAUTHN_SCRIPT_PATH:
        return script(ctx, res, 'webauthn');
      default:
        throw new GatewayError('ROUTE_NOT_FOUND', `no second-factor endpoint at ${ctx.path}`);
    }
  };
}
