import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { CommandRunner } from '../command-runner.js';
import type { CommandContext } from '../context.js';
import { ExitCode, NeedsPersonError, UsageError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { utcDay } from '../../lib/clock.js';
import { redact } from '../../lib/redact.js';
import { sndsApiSchema } from '../../config/schema.js';
import { linkStates } from '../../reports/integrations.js';
import { tokenStoreFor } from '../../ingest/snds/ingest-api.js';
import { buildAuthorizeUrl, codeFromRedirect, createPkce, exchangeCode, newState, OAuthError } from '../../ingest/snds/oauth.js';

/** `repwatch snds links` (when each automated link expires) and `repwatch snds login` (the REST API). */
export function registerSnds(program: Command, run: CommandRunner): void {
  const snds = program.command('snds').description('SNDS automated links and the SNDS REST API sign-in');
  snds
    .command('links')
    .description('list the configured SNDS feeds with the day their automated link expires and the days left')
    .option('--format <format>', 'table or json (default: table on a terminal, else json)')
    .action((options: { format?: string }) => run((ctx) => links(ctx, options)));
  snds
    .command('login')
    .description('sign in to the SNDS REST API (OAuth with PKCE) and store the refresh token')
    .option('--paste', 'no local browser: open the printed address anywhere, then paste the address you end up at')
    .option('--port <port>', 'port of the local redirect server (default: any free port)', (v) => Number(v))
    .option('--timeout <seconds>', 'how long to wait for the sign-in', (v) => Number(v), 300)
    .action((options: { paste?: boolean; port?: number; timeout: number }) => run((ctx) => login(ctx, options)));
}

async function links(ctx: CommandContext, options: { format?: string }): Promise<number> {
  let format;
  try {
    format = parseFormat(options.format, ['table', 'json'], ctx.stdout.isTTY ?? false);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const today = utcDay(ctx.clock.now());
  const { linkLifetimeDays, linkWarnDays } = ctx.config.snds;
  // The same rule and advice as the ingest and the weekly report.
  const rows = linkStates(ctx.config, today).map((link, i) => {
    const feed = ctx.config.snds.feeds[i]!;
    return {
      ...link,
      dataUrl: feed.dataUrl ? redact(feed.dataUrl) : null,
      statusUrl: feed.statusUrl ? redact(feed.statusUrl) : null,
      timezone: feed.timezone,
    };
  });
  if (format === 'json') {
    ctx.stdout.write(toJson({ today, linkLifetimeDays, linkWarnDays, feeds: rows }));
  } else if (!rows.length) {
    ctx.stdout.write('no SNDS feeds are configured (snds.feeds)\n');
  } else {
    ctx.stdout.write(
      toTable(rows, [
        { key: 'feed' },
        { key: 'createdOn', title: 'created' },
        { key: 'expiresOn', title: 'expires' },
        { key: 'daysLeft', title: 'days left', align: 'right' },
        { key: 'state' },
        { key: 'timezone' },
      ]),
    );
    for (const row of rows) if (row.advice) ctx.stdout.write(`${row.feed}: ${row.state === 'expired' ? 'expired: ' : row.state === 'warn' ? 'expires soon: ' : ''}${row.advice}\n`);
  }
  return ExitCode.ok;
}

async function login(ctx: CommandContext, options: { paste?: boolean; port?: number; timeout: number }): Promise<number> {
  if (options.port !== undefined && !(Number.isInteger(options.port) && options.port >= 0 && options.port <= 65535)) {
    throw new UsageError('--port must be a port number from 0 to 65535 (0 or none: any free port)');
  }
  if (!(Number.isFinite(options.timeout) && options.timeout > 0 && options.timeout <= 3600)) {
    throw new UsageError('--timeout must be a number of seconds from 1 to 3600');
  }
  const api = ctx.config.snds.api ?? sndsApiSchema.parse({});
  const pkce = createPkce();
  const state = newState();
  let redirectUri: string;
  let code: string;
  try {
    if (options.paste) {
      redirectUri = 'http://localhost';
      ctx.stdout.write(`Open this address in a browser, sign in with the account that sees your IPs in SNDS:\n\n${buildAuthorizeUrl(api, { redirectUri, pkce, state })}\n\n`);
      ctx.stdout.write('The browser then fails to load a http://localhost/?code=… page. Paste that whole address here and press Enter:\n');
      code = codeFromRedirect(await readLine(ctx.stdin), state);
    } else {
      const waited = await loopbackCode(ctx, { port: options.port ?? 0, timeoutMs: options.timeout * 1000, pkce, state, api });
      redirectUri = waited.redirectUri;
      code = waited.code;
    }
    const { connectTimeoutMs, timeoutMs, retries } = ctx.config.snds;
    const tokens = await exchangeCode(globalThis.fetch, api, { code, verifier: pkce.verifier, redirectUri }, { connectTimeoutMs, timeoutMs, retries });
    if (!tokens.refreshToken) throw new OAuthError('the sign-in gave no refresh token (is offline_access in the scope?)', true);
    const database = api.tokenStore === 'database' ? await ctx.database() : undefined;
    const store = tokenStoreFor(api, database!, ctx.home);
    await store.write(tokens.refreshToken);
    ctx.stdout.write(`signed in to the SNDS API; the refresh token is stored in ${store.description} (it is replaced after every use)\n`);
    return ExitCode.ok;
  } catch (error) {
    if (error instanceof OAuthError) throw new NeedsPersonError(`SNDS login failed: ${error.message}`);
    throw error;
  }
}

/** A one-shot HTTP server on the loopback address that receives the browser's redirect. */
async function loopbackCode(
  ctx: CommandContext,
  options: { port: number; timeoutMs: number; pkce: ReturnType<typeof createPkce>; state: string; api: Parameters<typeof buildAuthorizeUrl>[0] },
): Promise<{ code: string; redirectUri: string }> {
  let settle: (value: { code: string } | { error: Error }) => void = () => undefined;
  const outcome = new Promise<{ code: string } | { error: Error }>((resolve) => (settle = resolve));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.searchParams.has('code') && !url.searchParams.has('error')) {
      res.writeHead(404).end();
      return;
    }
    try {
      const code = codeFromRedirect(`http://localhost${req.url}`, options.state);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('repwatch: signed in. You can close this window.\n');
      settle({ code });
    } catch (error) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end(`repwatch: ${(error as Error).message}\n`);
      settle({ error: error as Error });
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  const redirectUri = `http://localhost:${port}`;
  const timer = setTimeout(() => settle({ error: new OAuthError(`no sign-in within ${Math.round(options.timeoutMs / 1000)} s`, true) }), options.timeoutMs);
  try {
    ctx.stdout.write(`Open this address in a browser on this machine and sign in with the account that sees your IPs in SNDS:\n\n${buildAuthorizeUrl(options.api, { redirectUri, pkce: options.pkce, state: options.state })}\n\nWaiting for the sign-in on ${redirectUri} …\n`);
    const result = await outcome;
    if ('error' in result) throw result.error;
    return { code: result.code, redirectUri };
  } finally {
    clearTimeout(timer);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function readLine(input: NodeJS.ReadableStream): Promise<string> {
  const rl = createInterface({ input, terminal: false });
  return new Promise((resolve, reject) => {
    // 'close' also fires when we close after a line: settle with the line first.
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      resolve(line);
      rl.close();
    });
    rl.once('close', () => {
      if (!answered) reject(new OAuthError('no address was pasted', true));
    });
  });
}
