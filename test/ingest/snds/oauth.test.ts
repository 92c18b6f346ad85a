import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachBackend } from '../../support/backends.js';
import { runCli } from '../../../cli/main.js';
import { parseConfig } from '../../../config/load-config.js';
import { fixedClock } from '../../../lib/clock.js';
import { silentLogger } from '../../../lib/logger.js';
import { ingestSndsApi } from '../../../ingest/snds/ingest-api.js';
import { SndsNeedsPersonError } from '../../../ingest/snds/ingest-feed.js';
import { codeFromRedirect, createPkce, databaseTokenStore, fileTokenStore, pkceChallenge } from '../../../ingest/snds/oauth.js';
import { dataExport, startServer, type TestServer } from './snds-server.js';

const dir = mkdtempSync(join(tmpdir(), 'repwatch-snds-oauth-'));
const clock = fixedClock('2026-11-27T06:00:00Z');
let server: TestServer;
const auth = { challenge: '', redirectUri: '', code: 'auth-code-0123456789', refresh: '', access: '', generation: 0, apiStatus: 200 };

beforeAll(async () => {
  server = await startServer({
    '/authorize': (req, res) => {
      const url = new URL(req.url!, 'http://x');
      auth.challenge = url.searchParams.get('code_challenge') ?? '';
      auth.redirectUri = url.searchParams.get('redirect_uri') ?? '';
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      expect(url.searchParams.get('scope')).toBe('a53a6cc1-a1cd-46f7-a4aa-281cdabec33c/.default offline_access');
      res.writeHead(302, { location: `${auth.redirectUri}/?code=${auth.code}&state=${url.searchParams.get('state')}` }).end();
    },
    '/token': (req, res, body) => {
      const form = new URLSearchParams(body);
      const refuse = (error: string) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error, error_description: 'AADSTS70000: refused' }));
      // Microsoft refuses a public client's token request with an Origin header (AADSTS90023).
      if (req.headers.origin) return refuse('invalid_request');
      if (form.get('grant_type') === 'authorization_code') {
        if (form.get('code') !== auth.code || form.get('redirect_uri') !== auth.redirectUri) return refuse('invalid_grant');
        if (pkceChallenge(form.get('code_verifier') ?? '') !== auth.challenge) return refuse('invalid_grant');
      } else if (form.get('grant_type') === 'refresh_token') {
        if (!auth.refresh || form.get('refresh_token') !== auth.refresh) return refuse('invalid_grant');
      } else {
        return refuse('unsupported_grant_type');
      }
      auth.generation++;
      auth.refresh = `refresh-token-generation-${auth.generation}-abcdef`;
      auth.access = `access-token-generation-${auth.generation}-abcdef`;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: auth.access, refresh_token: auth.refresh, expires_in: 3600, token_type: 'Bearer' }));
    },
  });
});
afterAll(() => server.close());

/** The API: one day with data, others 404 (the test server's default); 401 when told. */
async function startApi(): Promise<TestServer> {
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    if (auth.apiStatus !== 200 || req.headers.authorization !== `Bearer ${auth.access}`) return res.writeHead(auth.apiStatus === 200 ? 401 : auth.apiStatus).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(dataExport('2026-11-25', ['10.5.0.1', '10.5.0.2']));
  };
  return startServer({
    '/api/report/data/2026-11-26': handler,
    '/api/report/status/ip': (req, res) => {
      if (auth.apiStatus !== 200 || req.headers.authorization !== `Bearer ${auth.access}`) return res.writeHead(401).end();
      res.writeHead(200).end('10.5.0.0,10.5.0.255,Yes,E-mail address harvesting\r\n');
    },
  });
}

describe('repwatch snds login (loopback redirect, PKCE)', () => {
  it('signs in, checks the PKCE verifier and stores the refresh token in a 0600 file', async () => {
    const tokenFile = join(dir, 'token');
    const configPath = join(dir, 'login.yaml');
    writeFileSync(configPath, JSON.stringify({ snds: { api: { authorizeUrl: `${server.url}/authorize`, tokenUrl: `${server.url}/token`, tokenFile } } }));
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let printed = '';
    const browsed = new Promise<void>((resolve, reject) => {
      stdout.on('data', async (chunk: Buffer) => {
        printed += chunk.toString('utf8');
        const match = /(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/.exec(printed);
        if (!match || !printed.includes('Waiting')) return;
        stdout.removeAllListeners('data');
        try {
          // The "browser": the authorize endpoint redirects to the loopback server with the code.
          const redirect = await fetch(match[1]!, { redirect: 'manual' });
          const back = redirect.headers.get('location')!.replace('//localhost:', '//127.0.0.1:');
          const landed = await fetch(back);
          expect(await landed.text()).toMatch(/signed in/);
          resolve();
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    const code = await runCli(['snds', 'login', '--timeout', '20'], { env: { REPWATCH_CONFIG: configPath, REPWATCH_HOME: dir }, clock, stdout, stderr });
    await browsed;
    expect(code).toBe(0);
    expect(auth.redirectUri).toMatch(/^http:\/\/localhost:\d+$/);
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(auth.refresh);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(printed).not.toContain(auth.refresh);
  });

  it('--paste: prints the address, takes the pasted redirect from stdin, stores the token; a pasted address from another login exits 3', async () => {
    const tokenFile = join(dir, 'token-pasted');
    const configPath = join(dir, 'login-paste.yaml');
    writeFileSync(configPath, JSON.stringify({ snds: { api: { authorizeUrl: `${server.url}/authorize`, tokenUrl: `${server.url}/token`, tokenFile } } }));
    const paste = async (tamper: (address: string) => string) => {
      const stdout = new PassThrough();
      const stdin = new PassThrough();
      let printed = '';
      stdout.on('data', async (chunk: Buffer) => {
        printed += chunk.toString('utf8');
        const match = /(http:\/\/127\.0\.0\.1:\d+\/authorize\?\S+)/.exec(printed);
        if (!match || !printed.includes('Paste')) return;
        stdout.removeAllListeners('data');
        // Another machine's browser: it ends on http://localhost/?code=…, which the user pastes.
        const redirect = await fetch(match[1]!, { redirect: 'manual' });
        stdin.write(`${tamper(redirect.headers.get('location')!)}\n`);
      });
      const stderr = new PassThrough();
      let errors = '';
      stderr.on('data', (c: Buffer) => (errors += c.toString('utf8')));
      const code = await runCli(['snds', 'login', '--paste'], { env: { REPWATCH_CONFIG: configPath, REPWATCH_HOME: dir }, clock, stdout, stderr, stdin });
      return { code, printed, errors };
    };
    const good = await paste((address) => address);
    expect(good.code, good.errors).toBe(0);
    expect(auth.redirectUri).toBe('http://localhost');
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(auth.refresh);
    expect(good.printed).not.toContain(auth.refresh);
    const forged = await paste((address) => address.replace(/state=[^&]+/, 'state=someone-else'));
    expect(forged.code).toBe(3);
    expect(forged.errors).toMatch(/state mismatch/);
  });

  it('takes a pasted redirect address and refuses one from another login', () => {
    expect(codeFromRedirect('http://localhost/?code=abcdef123&state=s1', 's1')).toBe('abcdef123');
    expect(() => codeFromRedirect('http://localhost/?code=abcdef123&state=other', 's1')).toThrow(/state mismatch/);
    expect(() => codeFromRedirect('http://localhost/?error=access_denied&error_description=no', 's1')).toThrow(/access_denied/);
    const pkce = createPkce();
    expect(pkce.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(pkce.challenge).toBe(pkceChallenge(pkce.verifier));
  });
});

describeEachBackend('SNDS REST API ingest', (db) => {
  let api: TestServer;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());
  const config = () =>
    parseConfig({ snds: { refetchDays: 2, retries: 0, api: { baseUrl: `${api.url}/api`, tokenUrl: `${server.url}/token`, authorizeUrl: `${server.url}/authorize` } } });

  it('refreshes the token, stores the rotated refresh token, loads a day, 404 = no data', async () => {
    for (const store of [fileTokenStore(join(dir, `api-token-${Math.random()}`)), databaseTokenStore(db())]) {
      await store.write(auth.refresh);
      const before = auth.refresh;
      auth.apiStatus = 200;
      const cfg = config();
      const result = await ingestSndsApi({ database: db(), config: cfg, api: cfg.snds.api!, tokenStore: store, fetch, clock, logger: silentLogger(), skipRecompute: true });
      expect(await store.read()).toBe(auth.refresh);
      expect(auth.refresh).not.toBe(before);
      expect(result.inputs.map((i) => [i.requestedDay, i.outcome])).toEqual([
        ['2026-11-25', 'no_data'],
        ['2026-11-26', expect.stringMatching(/loaded|duplicate/)],
        [null, expect.stringMatching(/loaded|duplicate/)],
      ]);
    }
    const rows = await db().query<{ n: number }>(`select count(*)::int as n from repwatch.snds_row where feed = 'api'`);
    expect(rows[0]!.n).toBe(2);
  });

  it('401 from the API means "log in again" (exit 3); so does a refused refresh token', async () => {
    const store = databaseTokenStore(db());
    auth.apiStatus = 401;
    const cfg = config();
    const error = await ingestSndsApi({ database: db(), config: cfg, api: cfg.snds.api!, tokenStore: store, fetch, clock, logger: silentLogger(), skipRecompute: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect((error as Error).message).toMatch(/log in again.*repwatch snds login/s);
    expect((error as Error).message).not.toContain(auth.access);
    await store.write('a-refresh-token-nobody-knows');
    const refused = await ingestSndsApi({ database: db(), config: cfg, api: cfg.snds.api!, tokenStore: store, fetch, clock, logger: silentLogger(), skipRecompute: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SndsNeedsPersonError);
    expect((refused as Error).message).not.toContain('a-refresh-token-nobody-knows');
    auth.apiStatus = 200;
  });
});

/** An API whose answers the test sets per endpoint: 'data' (the day's export), 'status' (a block list), or an HTTP status. */
describeEachBackend('SNDS REST API: answers that are not data', (db) => {
  let api: TestServer;
  const answer = { data: 'data' as 'data' | number, status: 'status' as 'status' | number };
  beforeAll(async () => {
    const reply = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, what: string | number, body: () => string) => {
      if (req.headers.authorization !== `Bearer ${auth.access}`) return res.writeHead(401).end();
      if (what === 302) return res.writeHead(302, { location: 'https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize?client_id=x' }).end();
      if (typeof what === 'number') return res.writeHead(what).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body());
    };
    api = await startServer({
      '/api/report/data/2026-11-26': (req, res) => reply(req, res, answer.data, () => dataExport('2026-11-26', ['10.4.0.1'])),
      '/api/report/status/ip': (req, res, _b, n) => reply(req, res, answer.status, () => `10.4.0.0,10.4.0.${n},Yes,E-mail address harvesting\r\n`),
    });
  });
  afterAll(() => api.close());
  const run = async () => {
    const cfg = parseConfig({ snds: { refetchDays: 1, retries: 0, api: { baseUrl: `${api.url}/api`, tokenUrl: `${server.url}/token`, authorizeUrl: `${server.url}/authorize` } } });
    const store = databaseTokenStore(db());
    if (!(await store.read())) await store.write(auth.refresh);
    return ingestSndsApi({ database: db(), config: cfg, api: cfg.snds.api!, tokenStore: store, fetch, clock, logger: silentLogger(), skipRecompute: true });
  };
  const currentList = () => db().query<{ first_ip: string; last_ip: string }>(`select host(first_ip) as first_ip, host(last_ip) as last_ip from analytics.ip_status`);

  it('an IP Status 404 is a failure (exit 1) and the previous block list stays current', async () => {
    answer.data = 'data';
    answer.status = 'status';
    const first = await run();
    expect(first.failures).toEqual([]);
    const before = await currentList();
    expect(before).toHaveLength(1);

    answer.status = 404;
    const second = await run();
    expect(second.inputs.map((i) => [i.kind, i.outcome])).toEqual([
      ['ip_data', expect.stringMatching(/loaded|duplicate/)],
      ['ip_status', 'failed'],
    ]);
    expect(second.failures.join('\n')).toMatch(/IP Status .*HTTP 404 from the IP Status endpoint/);
    expect(await currentList()).toEqual(before);
    const [latest] = await db().query<{ outcome: string; http_status: number }>(
      `select outcome, http_status from repwatch.raw_download where feed = 'api' and kind = 'ip_status' order by id desc limit 1`,
    );
    expect(latest).toEqual({ outcome: 'failed', http_status: 404 });
  });

  it('a per-day IP Data 404 stays "no data that day"', async () => {
    answer.data = 404;
    answer.status = 'status';
    const result = await run();
    expect(result.inputs.map((i) => [i.kind, i.outcome])).toEqual([
      ['ip_data', 'no_data'],
      ['ip_status', 'loaded'],
    ]);
    expect(result.failures).toEqual([]);
  });

  it('403 from the API means "log in again" (exit 3)', async () => {
    answer.data = 403;
    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect((error as Error).message).toMatch(/refused the token \(HTTP 403\): log in again.*repwatch snds login/s);
    expect((error as Error).message).not.toContain(auth.access);
  });

  it('a redirect to a login host means "log in again" (exit 3), and the login host is not fetched', async () => {
    answer.data = 302;
    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SndsNeedsPersonError);
    expect((error as Error).message).toMatch(/redirected to a sign-in page \(login\.microsoftonline\.com\).*repwatch snds login/s);
    answer.data = 'data';
  });
});
