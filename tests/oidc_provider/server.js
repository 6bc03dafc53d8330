// A real OpenID Provider for tests/test_oidc.py: the certified `oidc-provider` package, on
// 127.0.0.1 at the port given, with one client for formtool (a confidential client that must
// use PKCE S256) and three users signing in through the package's own development login form
// (any password). It prints "ready" once it listens.
//
//   node server.js PORT REDIRECT_URI[,REDIRECT_URI...]
//
// Users (the name typed in the login form): amira.khan is in two groups formtool maps
// (qa-officers, qa-admins) and one it does not; noel.nobody is in no mapped group; olive has the
// name of a local formtool account. All names are synthetic.
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, redirects] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const CLIENT_ID = 'formtool';
const CLIENT_SECRET = 'a-test-secret-not-for-production'; // tests/test_oidc.py says it too

const USERS = {
  'amira.khan': { name: 'Amira Khan', groups: ['qa-officers', 'qa-admins', 'all-staff'] },
  'noel.nobody': { name: 'Noel Nobody', groups: ['all-staff'] },
  olive: { name: 'Olive Example', groups: ['qa-officers'] },
};

const signing = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: redirects.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [{ ...signing.export({ format: 'jwk' }), kid: 'test-rsa-1', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['a-test-cookie-key-not-for-production'] },
  pkce: { methods: ['S256'], required: () => true },
  features: { devInteractions: { enabled: true } },
  scopes: ['openid', 'profile', 'groups'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false, // the claims go in the ID token, as Entra ID puts groups there
  // formtool is first-party: the user is never asked to consent
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile groups');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, preferred_username: id, name: user.name, groups: user.groups,
        };
      },
    };
  },
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600,
  },
};

const provider = new Provider(issuer, configuration);
provider.listen(Number(port), '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
