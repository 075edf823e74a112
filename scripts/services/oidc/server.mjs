// A real OpenID Provider for tests (panva/node-oidc-provider), configured to behave like
// ESCAPE IAM (INDIGO IAM) where a client can tell (shared/reference/iam.md §9):
// - IAM endpoint paths, found only through discovery: /devicecode, /token, /jwk, /userinfo, /introspect;
// - the device grant answers with `interval`, and with `slow_down` when polled faster than that;
// - groups per login from users.json, in the IAM profile style selected by scope (`iam`, `wlcg`,
//   `aarc`) or by OIDC_GROUP_CLAIM (groups | wlcg.groups | eduperson_entitlement);
//   `wlcg.groups` only when the `wlcg.groups` scope is requested, `eduperson_entitlement` likewise;
// - refresh tokens only with `offline_access`; an `audience` parameter sets `aud`;
// - RFC 8693 token exchange enabled on the confidential client only (others: unauthorized_client);
// - client ci-short gets short-lived access tokens, ci-expiring short-lived device codes (tests);
// - WLCG storage scopes with a path (`storage.read:/data`, `storage.create:/`, `storage.modify:/x`,
//   `storage.stage:/`), as the ESCAPE data lake's IAM grants them: granted when requested (no scope
//   policy), kept by the refresh token, so a refresh may narrow to some of them and to an audience.
// Loopback only; dev interactions: any login/password is accepted on the built-in login page.
import Provider, { errors } from 'oidc-provider';
import { exportJWK, generateKeyPair, importJWK, jwtVerify } from 'jose';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const env = process.env;
const port = Number(env.OIDC_PORT || 9400);
const host = env.OIDC_HOST || '127.0.0.1';
const issuer = env.OIDC_ISSUER || `http://${host}:${port}/`; // IAM issuers end with "/"
const clientId = env.OIDC_CLIENT_ID || 'ci-client';
const clientSecret = env.OIDC_CLIENT_SECRET || 'ci-secret';
const publicClientId = env.OIDC_PUBLIC_CLIENT_ID || 'ci-device';
const shortClientId = env.OIDC_SHORT_CLIENT_ID || 'ci-short';
const expiringClientId = env.OIDC_EXPIRING_CLIENT_ID || 'ci-expiring';
const audience = env.OIDC_AUDIENCE || 'urn:ci:api';
const accessTokenTTL = Number(env.OIDC_ACCESS_TOKEN_TTL || 3600);
const shortTTL = Number(env.OIDC_SHORT_TTL || 5);
const expiringDeviceTTL = Number(env.OIDC_EXPIRING_DEVICE_TTL || 3);
const deviceInterval = Number(env.OIDC_DEVICE_INTERVAL || 1);
const defaultClaim = env.OIDC_GROUP_CLAIM || 'groups';
const urnNamespace = env.OIDC_URN_NAMESPACE || 'geant:escape:ci';
const usersFile = env.OIDC_USERS || new URL('./users.json', import.meta.url).pathname;
const keyFile = env.OIDC_KEY_FILE || new URL('./signing-key.json', import.meta.url).pathname;

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const CLAIM_STYLES = ['groups', 'wlcg.groups', 'eduperson_entitlement'];
if (!CLAIM_STYLES.includes(defaultClaim)) throw new Error(`OIDC_GROUP_CLAIM must be one of ${CLAIM_STYLES}`);
const SCOPES = ['openid', 'offline_access', 'profile', 'email', 'api',
  'wlcg', 'wlcg.groups', 'iam', 'aarc', 'eduperson_entitlement'];
const SCOPE_TEXT = SCOPES.join(' ');
// parametric scopes cannot be listed in SCOPES: they are recognised by their shape
const STORAGE_SCOPE = /^storage\.(read|create|modify|stage):\/\S*$/;
const storageScopes = (text) => String(text || '').split(' ').filter((s) => STORAGE_SCOPE.test(s));
// the storage scopes of the request being served: its scope parameter, else its device code's or refresh token's
function requestedStorageScopes(ctx) {
  const found = [ctx.oidc?.params?.scope, ctx.oidc?.entities?.DeviceCode?.scope,
    ctx.oidc?.entities?.RefreshToken?.scope].flatMap(storageScopes);
  return [...new Set(found)];
}
const resourceScopes = (ctx) => [SCOPE_TEXT, ...requestedStorageScopes(ctx)].join(' ');

const users = JSON.parse(readFileSync(usersFile, 'utf8'));
const userOf = (sub) => (sub && users[sub] && !sub.startsWith('_') ? users[sub] : { groups: [] });

// One signing key per provider directory: tokens stay verifiable across restarts.
async function signingKey() {
  if (existsSync(keyFile)) return JSON.parse(readFileSync(keyFile, 'utf8'));
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `ci-${Date.now()}`, alg: 'RS256', use: 'sig' };
  writeFileSync(keyFile, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}
const privateJwk = await signingKey();
const { d, p, q, dp, dq, qi, ...publicJwk } = privateJwk;
const publicKey = await importJWK(publicJwk, 'RS256');

// The group claim a token gets, IAM style: profile by scope first, then the provider default.
function groupClaims(sub, scopes) {
  const groups = userOf(sub).groups || [];
  let style = defaultClaim;
  if (scopes.has('wlcg')) style = 'wlcg.groups';
  else if (scopes.has('aarc')) style = 'eduperson_entitlement';
  else if (scopes.has('iam')) style = 'groups';
  if (style === 'groups') return { groups };
  if (style === 'wlcg.groups') {
    return scopes.has('wlcg.groups') ? { 'wlcg.groups': groups.map((g) => `/${g}`), wlcg: { ver: '1.0' } } : { wlcg: { ver: '1.0' } };
  }
  if (!scopes.has('eduperson_entitlement')) return {};
  return { eduperson_entitlement: groups.map((g) => `urn:${urnNamespace}:group:${g.replaceAll('/', ':')}#${host}`) };
}

// The audience a client asked for (IAM's `audience` parameter): token request, else device request.
function requestedAudience(ctx) {
  const value = ctx.oidc?.body?.audience || ctx.oidc?.entities?.DeviceCode?.params?.audience;
  if (!value) return undefined;
  const list = String(value).split(' ').filter(Boolean);
  return list.length === 1 ? list[0] : list;
}

const ttlFor = (client) => (client?.clientId === shortClientId ? shortTTL : accessTokenTTL);
const publicClient = (id) => ({
  client_id: id, token_endpoint_auth_method: 'none',
  grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: SCOPE_TEXT,
});

const configuration = {
  clients: [
    { // confidential client: everything, including token exchange (enabled by an "admin")
      client_id: clientId, client_secret: clientSecret,
      grant_types: ['client_credentials', DEVICE_GRANT, 'refresh_token', 'authorization_code', EXCHANGE_GRANT],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:8765/callback', 'http://localhost:8765/callback'],
      scope: SCOPE_TEXT,
    },
    publicClient(publicClientId), // CLI style: device flow + refresh, no secret, no exchange
    publicClient(shortClientId), // like ci-device, access tokens live OIDC_SHORT_TTL seconds
    publicClient(expiringClientId), // like ci-device, device codes live OIDC_EXPIRING_DEVICE_TTL seconds
  ],
  jwks: { keys: [privateJwk] },
  routes: {
    authorization: '/authorize', token: '/token', userinfo: '/userinfo', jwks: '/jwk',
    device_authorization: '/devicecode', introspection: '/introspect', revocation: '/revoke',
  },
  scopes: SCOPES,
  extraParams: ['audience'],
  claims: {
    openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username', 'groups'],
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: resourceScopes(ctx), audience, accessTokenFormat: 'jwt', accessTokenTTL: ttlFor(client),
      }),
    },
  },
  extraTokenClaims: async (ctx, token) => (token.accountId
    ? groupClaims(token.accountId, new Set((token.scope || '').split(' '))) : undefined),
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        const aud = requestedAudience(ctx);
        if (aud) jwt.payload.aud = aud; // eslint-disable-line no-param-reassign
      },
    },
  },
  // auto-consent: every requested scope is granted (tests only)
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const found = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    const grant = found || new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(SCOPE_TEXT);
    grant.addResourceScope(audience, resourceScopes(ctx));
    await grant.save();
    return grant;
  },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({
      sub, email: `${sub}@example.test`, email_verified: true, name: userOf(sub).name || sub,
      preferred_username: sub, groups: userOf(sub).groups || [],
    }),
  }),
  pkce: { required: () => false },
  ttl: {
    AccessToken: (ctx, token, client) => ttlFor(client),
    ClientCredentials: accessTokenTTL,
    DeviceCode: (ctx, token, client) => (client?.clientId === expiringClientId ? expiringDeviceTTL : 600),
    RefreshToken: 86400, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 86400,
  },
  cookies: { keys: ['ci-cookie-key-not-secret'] },
};

const provider = new Provider(issuer, configuration);

// RFC 8693 token exchange, IAM rules: impersonation only (no actor_token / want_composite),
// the scopes must be held by the subject token, `audience` (space separated) narrows `aud`.
provider.registerGrantType(EXCHANGE_GRANT, async (ctx, next) => {
  const params = ctx.oidc.params;
  if (params.actor_token || params.want_composite) {
    throw new errors.InvalidRequest('actor_token and want_composite are not supported (impersonation only)');
  }
  if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token');
  if (params.subject_token_type && ![ACCESS_TYPE, JWT_TYPE].includes(params.subject_token_type)) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  let subject;
  try {
    ({ payload: subject } = await jwtVerify(params.subject_token, publicKey, { issuer, algorithms: ['RS256'] }));
  } catch (err) {
    throw new errors.InvalidGrant(`subject_token is not valid (${err.code || 'invalid'})`);
  }
  const held = new Set(String(subject.scope || '').split(' ').filter(Boolean));
  const wanted = params.scope ? params.scope.split(' ').filter(Boolean) : [...held];
  const missing = wanted.filter((s) => !held.has(s));
  if (missing.length) throw new errors.InvalidScope('scope not granted to the subject token', missing.join(' '));
  const scope = wanted.join(' ');
  const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: subject.sub });
  grant.addResourceScope(audience, scope);
  const grantId = await grant.save();
  const token = new provider.AccessToken({
    accountId: subject.sub, client: ctx.oidc.client, grantId, scope, gty: 'token_exchange',
  });
  token.resourceServer = new provider.ResourceServer(audience, {
    scope, audience, accessTokenFormat: 'jwt', accessTokenTTL: ttlFor(ctx.oidc.client),
  });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  ctx.body = {
    access_token: value, issued_token_type: JWT_TYPE, token_type: 'Bearer',
    expires_in: token.expiration, scope,
  };
  await next();
}, ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'want_composite', 'audience', 'scope', 'resource', 'requested_token_type']);

// Userinfo for IAM-style bearer tokens (JWT access tokens for the API audience, which
// oidc-provider's own userinfo refuses): {sub, email, name, preferred_username, groups}.
// Anything else falls through to oidc-provider: 401 with WWW-Authenticate: Bearer error="invalid_token".
provider.use(async (ctx, next) => {
  const bearer = /^Bearer (\S+)$/i.exec(ctx.get('authorization') || '');
  if (ctx.path === '/userinfo' && bearer) {
    try {
      const { payload } = await jwtVerify(bearer[1], publicKey, { issuer, algorithms: ['RS256'] });
      const user = userOf(payload.sub);
      ctx.body = {
        sub: payload.sub, email: `${payload.sub}@example.test`, name: user.name || payload.sub,
        preferred_username: payload.sub, groups: user.groups || [],
      };
      return;
    } catch (err) { /* not one of ours: let oidc-provider answer */ }
  }
  await next();
});

// Device grant polling: `interval` in the device authorization reply, `slow_down` when a client
// polls again sooner than that (oidc-provider alone never says slow_down); a grant type the
// client may not use is `unauthorized_client`.
const lastPoll = new Map();
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/devicecode' && ctx.status === 200 && ctx.body?.device_code) {
    ctx.body = { ...ctx.body, interval: deviceInterval };
  } else if (ctx.path === '/token' && ctx.body?.error === 'invalid_request'
    && /grant type is not allowed for this client/.test(ctx.body.error_description)) {
    ctx.body = { ...ctx.body, error: 'unauthorized_client' }; // RFC 6749 5.2, as IAM answers
  } else if (ctx.path === '/token' && ctx.body?.error === 'authorization_pending') {
    const code = ctx.oidc?.params?.device_code;
    const now = Date.now();
    const previous = lastPoll.get(code);
    lastPoll.set(code, now);
    if (previous !== undefined && now - previous < deviceInterval * 1000 * 0.8) {
      ctx.body = { error: 'slow_down', error_description: `poll at most every ${deviceInterval} s` };
    }
  }
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, host, () => {
  if (env.OIDC_PIDFILE) writeFileSync(env.OIDC_PIDFILE, String(process.pid));
  console.log(`oidc-provider listening on ${issuer} (discovery ${issuer}.well-known/openid-configuration)`);
});
