// Minimal, real OpenID Connect provider for tests: oidc-provider (panva) v9 on plain HTTP, loopback.
//
//   node provider.mjs [PORT]            (PORT 0 or unset = pick a free port)
//
// Prints exactly one line "READY <issuer>" on stdout once it accepts connections.
//
// Environment (all optional):
//   OP_HOST            listen address                         (127.0.0.1)
//   OP_PORT            port, overridden by argv[2]            (0 = free port)
//   OP_ISSUER          issuer                                 (http://OP_HOST:PORT)
//   OP_CLIENT_ID       static client id                       (claribi)
//   OP_CLIENT_SECRET   its secret                             (claribi-secret)
//   OP_REDIRECT_URIS   comma-separated redirect URIs          (http://127.0.0.1:8080/sso/callback)
//   OP_POST_LOGOUT_REDIRECT_URIS comma-separated             (none)
//   OP_AUTH_METHOD     client_secret_basic | client_secret_post | none   (client_secret_basic)
//   OP_CLIENTS         JSON array of full client metadata objects (replaces the single client above)
//   OP_USERS_FILE      JSON file: [{ "login", "password", "sub", "email", "email_verified", "name", "groups": [] }]
//   OP_JWKS_FILE       JSON file {"keys":[private RSA JWKs]}: loaded if present, else generated and written there
//   OP_CONSENT         auto | form   (auto: no consent page; form: a consent page with one "Continue" button)
//   OP_ID_TOKEN_TTL    ID token lifetime in seconds            (3600)
//   OP_TLS_CERT, OP_TLS_KEY  PEM files: serve https:// with them (issuer https://OP_HOST:PORT)
//
// Admin endpoints (loopback test use only, no auth):
//   GET  /admin/keys                    -> {"kids":[...]} (first = current signing key)
//   POST /admin/rotate[?keep_old=0]     -> generates a new RS256 key with a new kid, puts it FIRST
//                                          (signs from now on); keep_old=1 (default) keeps publishing the
//                                          old public key(s) in /jwks, keep_old=0 drops them.
//   Sessions, codes and tokens survive a rotation (the in-memory adapter is process-wide).
import * as http from 'node:http';
import * as https from 'node:https';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { Provider } from 'oidc-provider';

const env = process.env;
const HOST = env.OP_HOST || '127.0.0.1';
const PORT = Number(process.argv[2] ?? env.OP_PORT ?? 0);
const CONSENT = env.OP_CONSENT || 'auto';

const DEFAULT_USERS = [
  { login: 'alice', password: 'alice-pw', sub: 'u-alice', email: 'alice@example.org', email_verified: true, name: 'Alice Example', groups: ['claribi-admins', 'staff'] },
  { login: 'bob', password: 'bob-pw', sub: 'u-bob', email: 'bob@example.org', email_verified: true, name: 'Bob Example', groups: ['staff'] },
  { login: 'carol', password: 'carol-pw', sub: 'u-carol', email: 'carol@example.org', email_verified: false, name: 'Carol Unverified', groups: [] },
];
const users = env.OP_USERS_FILE ? JSON.parse(fs.readFileSync(env.OP_USERS_FILE, 'utf8')) : DEFAULT_USERS;
const byLogin = new Map(users.map((u) => [u.login, u]));
const bySub = new Map(users.map((u) => [u.sub, u]));

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${Date.now().toString(36)}-${crypto.randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

let jwks;
if (env.OP_JWKS_FILE && fs.existsSync(env.OP_JWKS_FILE)) {
  jwks = JSON.parse(fs.readFileSync(env.OP_JWKS_FILE, 'utf8'));
} else {
  jwks = { keys: [newSigningKey()] };
  if (env.OP_JWKS_FILE) fs.writeFileSync(env.OP_JWKS_FILE, JSON.stringify(jwks), { mode: 0o600 });
}

const clients = env.OP_CLIENTS ? JSON.parse(env.OP_CLIENTS) : [{
  client_id: env.OP_CLIENT_ID || 'claribi',
  client_secret: env.OP_CLIENT_SECRET || 'claribi-secret',
  redirect_uris: (env.OP_REDIRECT_URIS || 'http://127.0.0.1:8080/sso/callback').split(',').map((s) => s.trim()).filter(Boolean),
  post_logout_redirect_uris: (env.OP_POST_LOGOUT_REDIRECT_URIS || '').split(',').map((s) => s.trim()).filter(Boolean),
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: env.OP_AUTH_METHOD || 'client_secret_basic',
}];
if ((env.OP_AUTH_METHOD || '') === 'none') delete clients[0].client_secret;

// Process-wide in-memory storage shared by every Provider instance (v9's built-in memory adapter is per
// instance, so a key rotation, which builds a new Provider, would lose sessions, codes and tokens).
const store = new Map(); const uidIndex = new Map(); const userCodeIndex = new Map(); const grantIndex = new Map();
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
class SharedMemoryAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, exp: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (this.model === 'Session') uidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
    if (payload.grantId && GRANTABLE.has(this.model)) { if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set()); grantIndex.get(payload.grantId).add(key); }
  }
  async find(id) {
    const e = store.get(this.key(id));
    if (!e) return undefined;
    if (e.exp <= Date.now()) { store.delete(this.key(id)); return undefined; }
    return e.payload;
  }
  async findByUid(uid) { const id = uidIndex.get(uid); return id === undefined ? undefined : this.find(id); }
  async findByUserCode(code) { const id = userCodeIndex.get(code); return id === undefined ? undefined : this.find(id); }
  async consume(id) { const e = store.get(this.key(id)); if (e) e.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) { for (const k of grantIndex.get(grantId) ?? []) store.delete(k); grantIndex.delete(grantId); }
}

const cookieKeys = [crypto.randomBytes(32).toString('hex')]; // same for every Provider instance of this process

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: env.OP_BUILTIN_ADAPTER ? undefined : SharedMemoryAdapter,
    clients,
    jwks,
    cookies: { keys: cookieKeys },
    // email/profile/groups claims go into the ID token even though an access token is issued too
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    pkce: { required: () => true }, // claribi always sends S256
    features: {
      devInteractions: { enabled: false }, // our own login form below checks passwords
      rpInitiatedLogout: { enabled: true },
      userinfo: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    ttl: {
      IdToken: Number(env.OP_ID_TOKEN_TTL || 3600), AccessToken: 3600, AuthorizationCode: 60, RefreshToken: 86400,
      Interaction: 600, Session: 86400, Grant: 86400,
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const u = bySub.get(sub);
      if (!u) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub, email: u.email, email_verified: u.email_verified, name: u.name, preferred_username: u.login, groups: u.groups,
          };
        },
      };
    },
    // OP_CONSENT=auto: treat the client as first-party, grant what it asked for without a consent page
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (CONSENT !== 'auto') return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
    renderError(ctx, out, error) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>oops</title><h1>oops! something went wrong</h1><pre id="error">${esc(JSON.stringify(out, null, 2))}</pre>`;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  if (env.OP_DEBUG) for (const ev of ['grant.error', 'authorization.error', 'end_session.error', 'userinfo.error', 'jwks.error', 'discovery.error']) provider.on(ev, (ctx, err) => console.error(ev, err.message, err.error_description ?? '', err.error_detail ?? '', err.cause ?? ''));
  return provider;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body}</body></html>`);
}

function loginForm(uid, loginHint, error) {
  return `${error ? `<p id="error" class="error">${esc(error)}</p>` : ''}
<form id="login-form" autocomplete="off" action="/interaction/${esc(uid)}/login" method="post">
  <label for="login">Username</label> <input id="login" required type="text" name="login" value="${esc(loginHint || '')}">
  <label for="password">Password</label> <input id="password" required type="password" name="password">
  <button id="submit" type="submit">Sign-in</button>
</form>
<form id="abort-form" action="/interaction/${esc(uid)}/abort" method="post"><button id="abort" type="submit">Cancel</button></form>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function json(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

let provider; // swapped on key rotation
let handler;

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res); // throws SessionNotFound without the _interaction cookie
  if (details.uid !== uid) throw new Error('interaction uid mismatch');
  const { prompt, params } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return page(res, 200, 'Sign-in', loginForm(uid, params.login_hint));
    if (prompt.name === 'consent') {
      return page(res, 200, 'Authorize', `<p>${esc(params.client_id)} asks for: ${esc(params.scope)}</p>
<form id="consent-form" action="/interaction/${esc(uid)}/confirm" method="post"><button id="continue" type="submit" autofocus>Continue</button></form>
<form id="abort-form" action="/interaction/${esc(uid)}/abort" method="post"><button id="abort" type="submit">Cancel</button></form>`);
    }
    return page(res, 501, 'not implemented', '');
  }
  if (req.method !== 'POST') return page(res, 405, 'method not allowed', '');
  if (action === 'login') {
    const form = await readForm(req);
    const u = byLogin.get(form.get('login') || '');
    if (!u || !crypto.timingSafeEqual(Buffer.from(crypto.hash('sha256', form.get('password') || '')), Buffer.from(crypto.hash('sha256', u.password)))) {
      return page(res, 200, 'Sign-in', loginForm(uid, form.get('login'), 'Invalid username or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: u.sub, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    const { grantId, session, prompt: { details: missing } } = details;
    const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) grant.addResourceScope(indicator, scope.join(' '));
    }
    return provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }
  if (action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User aborted interaction' }, { mergeWithLastSubmission: false });
  }
  return page(res, 404, 'not found', '');
}

const TLS = env.OP_TLS_CERT ? { cert: fs.readFileSync(env.OP_TLS_CERT), key: fs.readFileSync(env.OP_TLS_KEY) } : null;
const serve = async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x');
    const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
    if (m) return await interaction(req, res, m[1], m[2]);
    if (url.pathname === '/admin/keys' && req.method === 'GET') return json(res, 200, { kids: jwks.keys.map((k) => k.kid) });
    if (url.pathname === '/admin/rotate' && req.method === 'POST') {
      const keepOld = url.searchParams.get('keep_old') !== '0';
      jwks = { keys: [newSigningKey(), ...(keepOld ? jwks.keys : [])] };
      if (env.OP_JWKS_FILE) fs.writeFileSync(env.OP_JWKS_FILE, JSON.stringify(jwks), { mode: 0o600 });
      provider = makeProvider(provider.issuer);
      handler = provider.callback();
      return json(res, 200, { kids: jwks.keys.map((k) => k.kid) });
    }
    return handler(req, res);
  } catch (err) {
    if (!res.headersSent) page(res, 400, 'error', `<pre id="error">${esc(err.name)}: ${esc(err.message)}</pre>`);
    else res.end();
  }
};
const server = TLS ? https.createServer(TLS, serve) : http.createServer(serve);

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = env.OP_ISSUER || `${TLS ? 'https' : 'http'}://${HOST.includes(':') ? `[${HOST}]` : HOST}:${port}`;
  provider = makeProvider(issuer);
  handler = provider.callback();
  process.stdout.write(`READY ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0)); // all state is in memory
