/** The SSO hand-off's endpoints (src/auth/sso/handoff.ts), on every session host. */
export const SSO_PREFIX = '/auth/sso/';
/** On the host that wants a session: sets the state cookie, goes to the host that has one. */
export const SSO_BEGIN_PATH = '/auth/sso/begin';
/** On the host that has the session (the sign-in host): mints the one-time code. */
export const SSO_START_PATH = '/auth/sso/start';
/** Back on the host that wants a session: redeems the code, sets its cookies. */
export const SSO_CALLBACK_PATH = '/auth/sso/callback';
