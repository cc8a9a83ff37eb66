// An independent OpenID Provider (panva's oidc-provider) for bawwab's
// end-to-end tests: bawwab signs people in through it as through any
// upstream identity provider.
//
//   node server.mjs CONFIG.json
//
// CONFIG.json:
//   {
//     "port": 0,                       // 0 or absent: any free port
//     "host": "127.0.0.1",             // absent: 127.0.0.1
//     "issuer": "http://...",          // absent: http://HOST:PORT
//     "conform_id_token_claims": true, // false: scope claims in the ID token too
//     "clients": [{ "client_id": "...", "client_secret": "...",
//                   "redirect_uris": ["..."], ...more client metadata }],
//     "accounts": [{ "sub": "...", "email": "...", "email_verified": true,
//                    "name": "...", ...more claims }]
//   }
//
// Prints "ready ISSUER" on standard output once it listens, and exits when
// its standard input closes (the test that started it has gone).
//
// Sign-in is scriptable over plain HTTP, without a browser: the login page
// is a form that posts login=<sub> (or abort=1 to refuse), and consent is
// given at once for everything the client asked. Signing out at
// /session/end (a form that posts xsrf and logout=yes) sends a logout token
// to the back-channel logout URI of each client of the session.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = new Map((config.accounts ?? []).map((a) => [a.sub, a]));

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
}

function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHTML(title)}</title></head><body>${body}</body></html>`);
}

function loginForm(res, uid, status, problem) {
  const options = [...accounts.values()]
    .map((a) => `<option value="${escapeHTML(a.sub)}">${escapeHTML(a.name ?? a.sub)}</option>`).join('');
  page(res, status, 'Sign in', `<h1>Sign in</h1>${problem ? `<p role="alert">${escapeHTML(problem)}</p>` : ''}
<form method="post" action="/interaction/${escapeHTML(uid)}/login">
<select name="login">${options}</select>
<button type="submit">Sign in</button>
<button type="submit" name="abort" value="1">Cancel</button>
</form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// consent grants everything the client asked for.
async function consent(provider, req, res, interaction) {
  const { prompt: { details }, params, session: { accountId }, grantId } = interaction;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const id = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
}

async function login(provider, req, res, uid) {
  const form = await readForm(req);
  if (form.get('abort')) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'The person refused to sign in',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const account = accounts.get(form.get('login') ?? '');
  if (!account) {
    loginForm(res, uid, 400, `No account ${form.get('login') ?? ''}`);
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
}

async function interact(provider, req, res) {
  const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(new URL(req.url, 'http://x').pathname);
  if (!m) return false;
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== m[1]) throw new Error('interaction does not match its cookie');
  if (req.method === 'POST' && m[2]) {
    await login(provider, req, res, m[1]);
  } else if (req.method === 'GET' && !m[2] && interaction.prompt.name === 'login') {
    loginForm(res, m[1], 200);
  } else if (req.method === 'GET' && !m[2] && interaction.prompt.name === 'consent') {
    await consent(provider, req, res, interaction);
  } else {
    page(res, 405, 'Not allowed', `<p>${escapeHTML(req.method)} not allowed here</p>`);
  }
  return true;
}

function newProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: config.clients ?? [],
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: config.claims ?? {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    conformIdTokenClaims: config.conform_id_token_claims ?? true,
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, async claims() { return { ...account, sub }; } };
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign out</title></head><body>
${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button></body></html>`;
        },
      },
      revocation: { enabled: true },
    },
    // oidc-provider refuses to call loopback and private addresses; the
    // back-channel logout receivers of the tests are on loopback.
    fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined }),
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><body><h1>${escapeHTML(out.error)}</h1><p>${escapeHTML(out.error_description ?? '')}</p></body></html>`;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  provider.on('backchannel.error', (_ctx, err, client) => console.error('backchannel logout to', client.clientId, 'failed:', err.message, err.cause?.message ?? ''));
  return provider;
}

const server = http.createServer();
server.listen(config.port ?? 0, config.host ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  const issuer = config.issuer ?? `http://${address}:${port}`;
  const provider = newProvider(issuer);
  const callback = provider.callback();
  server.on('request', (req, res) => {
    interact(provider, req, res).then((handled) => {
      if (!handled) callback(req, res);
    }).catch((err) => {
      console.error(err);
      if (!res.headersSent) page(res, 400, 'Error', `<p>${escapeHTML(err.message)}</p>`);
    });
  });
  process.stdout.write(`ready ${issuer}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
