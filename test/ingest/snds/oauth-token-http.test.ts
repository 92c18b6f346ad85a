import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets } from '../../../lib/redact.js';
import { exchangeCode, OAuthError, refreshTokens, type OAuthSettings } from '../../../ingest/snds/oauth.js';
import { startServer, type TestServer } from './snds-server.js';

/**
 * The token request against a real token endpoint on loopback: deadlines, bounded retries on
 * network errors, 5xx and 429 (Retry-After honoured), no retry on a refusal, and no secret in any error.
 */

const REFRESH = 'refresh-token-0123456789-abcdefghij';
const VERIFIER = 'pkce-verifier-abcdefghijklmnopqrstuvwxyz0123456789ABCDE';
const CLIENT_SECRET = 'client~secret+with/odd=chars-42';
const CODE = 'authorization-code-0123456789';

let server: TestServer;
let stalled: import('node:http').ServerResponse[] = [];
const success = (res: import('node:http').ServerResponse, n: number) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `access-token-${n}-abcdefgh`, refresh_token: `refresh-token-${n}-abcdefgh`, expires_in: 3600 }));

beforeAll(async () => {
  server = await startServer({
    // Accepts the connection and never answers.
    '/stall': (_req, res) => void stalled.push(res),
    // Sends the headers, then never finishes the body.
    '/stall-body': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"access_token":');
      stalled.push(res);
    },
    '/flaky': (_req, res, _body, count) => {
      if (count === 1) return res.writeHead(503, { 'retry-after': '2', 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
      success(res, count);
    },
    '/busy': (_req, res, _body, count) => {
      if (count <= 2) return res.writeHead(429, { 'retry-after': '7' }).end();
      success(res, count);
    },
    '/down': (_req, res) => res.writeHead(500).end(),
    // Refuses, echoing the request body in its description (as some servers do).
    '/refuse': (_req, res, body) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: `AADSTS70000: bad grant for ${body}` })),
    '/unauthorized': (_req, res, body) => res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client', error_description: `no: ${decodeURIComponent(body)}` })),
  });
});
afterEach(() => {
  for (const res of stalled) res.destroy();
  stalled = [];
  clearRegisteredSecrets();
});
afterAll(() => server.close());

const settings = (path: string): OAuthSettings => ({ authorizeUrl: `${server.url}/authorize`, tokenUrl: `${server.url}${path}`, clientId: 'a53a6cc1-a1cd-46f7-a4aa-281cdabec33c', clientSecret: CLIENT_SECRET });
const requests = (path: string) => server.requests.filter((r) => r.url === path).length;
const waits: number[] = [];
const sleep = async (ms: number) => void waits.push(ms);

function expectNoSecrets(error: unknown): void {
  const text = `${(error as Error).message}\n${(error as Error).stack}\n${JSON.stringify(error)}`;
  for (const secret of [REFRESH, VERIFIER, CLIENT_SECRET, CODE, encodeURIComponent(CLIENT_SECRET), new URLSearchParams({ x: CLIENT_SECRET }).toString().slice(2)]) expect(text).not.toContain(secret);
}

describe('OAuth token request: deadlines and retries', () => {
  // Which deadline fired is in the message (each names its own limit); no wall-clock bound, which a
  // busy machine would break.
  it('a stalled token endpoint times out (headers never come), retried a bounded number of times', async () => {
    const before = requests('/stall');
    const error = await refreshTokens(fetch, settings('/stall'), REFRESH, { connectTimeoutMs: 300, timeoutMs: 5_000, retries: 1, sleep }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthError);
    expect((error as OAuthError).needsLogin).toBe(false);
    expect((error as Error).message).toMatch(/after 2 attempt\(s\): no response within 300 ms/);
    expect(requests('/stall') - before).toBe(2);
    expectNoSecrets(error);
  });

  it('a body that never finishes hits the total deadline', async () => {
    const error = await refreshTokens(fetch, settings('/stall-body'), REFRESH, { connectTimeoutMs: 2_000, timeoutMs: 400, retries: 0, sleep }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/no complete answer within 400 ms/);
    expectNoSecrets(error);
  });

  it('503 then success works, waiting what Retry-After says', async () => {
    waits.length = 0;
    const tokens = await refreshTokens(fetch, settings('/flaky'), REFRESH, { retries: 2, sleep });
    expect(tokens.accessToken).toBe('access-token-2-abcdefgh');
    expect(waits).toEqual([2_000]);
    expect(requests('/flaky')).toBe(2);
  });

  it('429 is retried with Retry-After honoured; a server that keeps failing gives up after the retries', async () => {
    waits.length = 0;
    expect((await refreshTokens(fetch, settings('/busy'), REFRESH, { retries: 3, sleep })).accessToken).toBe('access-token-3-abcdefgh');
    expect(waits).toEqual([7_000, 7_000]);
    waits.length = 0;
    const error = await refreshTokens(fetch, settings('/down'), REFRESH, { retries: 2, sleep }).catch((e: unknown) => e);
    expect((error as OAuthError).needsLogin).toBe(false);
    expect((error as Error).message).toMatch(/after 3 attempt\(s\): HTTP 500/);
    expect(waits).toEqual([1_000, 2_000]);
    expect(requests('/down')).toBe(3);
  });

  it('network errors are retried too (nothing listening)', async () => {
    waits.length = 0;
    const closed = await startServer({});
    const url = closed.url;
    await closed.close();
    const error = await refreshTokens(fetch, { ...settings('/x'), tokenUrl: `${url}/token` }, REFRESH, { retries: 1, sleep, connectTimeoutMs: 2_000 }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/after 2 attempt\(s\): fetch failed \(ECONNREFUSED\)/);
    expect(waits).toEqual([1_000]);
    expectNoSecrets(error);
  });

  it('invalid_grant (400) fails at once with "log in again", never retried, no secret in the error', async () => {
    waits.length = 0;
    const before = requests('/refuse');
    const error = await refreshTokens(fetch, settings('/refuse'), REFRESH, { retries: 3, sleep }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OAuthError);
    expect((error as OAuthError).needsLogin).toBe(true);
    expect((error as Error).message).toMatch(/invalid_grant.*log in again/);
    expect(requests('/refuse') - before).toBe(1);
    expect(waits).toEqual([]);
    // The server echoed the whole form (refresh token, client secret): none of it shows.
    expect(server.requests.at(-1)!.body).toContain(encodeURIComponent(REFRESH));
    expectNoSecrets(error);

    const exchange = await exchangeCode(fetch, settings('/unauthorized'), { code: CODE, verifier: VERIFIER, redirectUri: 'http://localhost:1234' }, { retries: 3, sleep }).catch((e: unknown) => e);
    expect((exchange as OAuthError).needsLogin).toBe(true);
    expect((exchange as Error).message).toMatch(/log in again/);
    expect((exchange as Error).message).toContain('[REDACTED]');
    expect(waits).toEqual([]);
    expectNoSecrets(exchange);
  });
});
