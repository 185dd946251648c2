// A real OpenID Connect provider for osam's end-to-end tests: panva's oidc-provider (certified by
// the OpenID Foundation), unmodified, on 127.0.0.1. What is real: discovery, the token endpoint
// (client_credentials grant, client_secret_basic), the RS256 JWT access tokens it mints for the
// resource server `osam` (resource indicators, RFC 8707/9068) and the JWKS endpoint it publishes.
// What the test controls: the signing keys and the clients (from the --config file), and a
// loopback-only `POST /_test/reload` that rotates the keys. oidc-provider 8.8.1 is pinned
// (package-lock.json): the newest release whose supported runtimes include Node 20, which CI has;
// 9.x works too but asks for Node 22.
//
// Usage: node provider.mjs --port 0 --config provider.json
//   provider.json: {
//     "keys": [{ "kid": "k2", "pem": "-----BEGIN PRIVATE KEY-----..." }, ...],
//     "clients": [{ "client_id": "...", "client_secret": "...",
//                   "preferred_username": "...", "roles": ["..."] }]
//   }
// The first key signs; every key in the list is published, so a rotation that keeps the old key
// second lets tokens already issued keep verifying, as a real issuer rotating keys does.
// Once listening, one JSON line goes to stdout: {"issuer": ..., "port": ..., "kids": [...]}.
// Rotation: rewrite the config file, then `POST /_test/reload`; a brand-new Provider is built
// from the file exactly as at start-up and serves every later request on the same port (so the
// issuer URL osam is configured with stays valid). The answer is the JSON line again.

import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints notices with console.info; stdout carries only this script's JSON lines.
console.info = console.error;

const RESOURCE_INDICATOR = 'urn:osam';
const AUDIENCE = 'osam';
const ACCESS_TOKEN_SECONDS = 600;

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    config: { type: 'string' },
  },
});
if (!options.config) {
  console.error('usage: node provider.mjs --port <port> --config <provider.json>');
  process.exit(2);
}

function readConfig() {
  const config = JSON.parse(readFileSync(options.config, 'utf8'));
  if (!Array.isArray(config.keys) || config.keys.length === 0) {
    throw new Error(`${options.config}: "keys" must list at least one signing key`);
  }
  const jwks = {
    keys: config.keys.map(({ kid, pem }) => ({
      ...createPrivateKey(pem).export({ format: 'jwk' }),
      kid,
      alg: 'RS256',
      use: 'sig',
    })),
  };
  return { jwks, clients: config.clients ?? [] };
}

function buildProvider(issuer) {
  const { jwks, clients } = readConfig();
  const signingKid = jwks.keys[0].kid;
  const identities = new Map(clients.map((client) => [client.client_id, client]));
  const provider = new Provider(issuer, {
    jwks,
    clients: clients.map(({ client_id, client_secret }) => ({
      client_id,
      client_secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    cookies: { keys: ['osam-e2e-cookie-key-not-a-secret'] },
    ttl: { ClientCredentials: ACCESS_TOKEN_SECONDS },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE_INDICATOR,
        getResourceServerInfo: (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE_INDICATOR) {
            throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          }
          return {
            audience: AUDIENCE,
            scope: 'osam',
            accessTokenTTL: ACCESS_TOKEN_SECONDS,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256', kid: signingKid } },
          };
        },
      },
    },
    // The identity osam reads (username and realm roles, in Keycloak's claim layout) is the
    // client's, since a client_credentials token has no end user.
    extraTokenClaims: (ctx, token) => {
      const identity = identities.get(token.clientId);
      if (!identity) return undefined;
      return {
        preferred_username: identity.preferred_username,
        realm_access: { roles: identity.roles ?? [] },
      };
    },
  });
  return { provider, kids: jwks.keys.map((key) => key.kid) };
}

// The request handler of the provider built last: a reload replaces it as a whole.
let handle;
let issuer;
let port;

function load() {
  const { provider, kids } = buildProvider(issuer);
  handle = provider.callback();
  return JSON.stringify({ issuer, port, kids });
}

const server = createServer((request, response) => {
  if (request.method === 'POST' && request.url === '/_test/reload') {
    try {
      const announcement = load();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(announcement);
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(String(error.stack ?? error));
    }
    return;
  }
  handle(request, response);
});

server.listen(Number(options.port), '127.0.0.1', () => {
  port = server.address().port;
  issuer = `http://127.0.0.1:${port}`;
  process.stdout.write(`${load()}\n`);
});

// The test kills this process when it is done; its stdin closing (the test died) ends it too.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
