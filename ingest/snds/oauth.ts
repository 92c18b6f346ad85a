import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from '../../db/connection.js';
import { registerSecret, redact } from '../../lib/redact.js';
import { backoffMs, parseRetryAfter, realSleep, type FetchLike, type Sleep } from './fetch-export.js';

/**
 * OAuth 2.0 for the SNDS REST API: the authorization-code flow with PKCE against Microsoft's
 * consumer endpoint, as the SNDS portal's own public client does. Microsoft replaces the refresh token
 * on every use, so the new one is stored after every refresh; losing it means logging in again.
 * Tokens are registered with the redactor the moment they are seen.
 */

export interface OAuthSettings {
  authorizeUrl: string;
  tokenUrl: string;
  clientId: string;
  /** Only for a confidential client (the SNDS portal's own client is public and has none). */
  clientSecret?: string;
}

/**
 * How a token request is made: a deadline for the response to start and one for the whole answer,
 * and bounded retries with backoff on network errors, 408, 429 and 5xx (Retry-After honoured). A
 * refusal (400/401/403, invalid_grant) is never retried: it means "log in again".
 */
export interface TokenHttpOptions {
  /** Deadline for connecting and receiving the response headers (default 15 s). */
  connectTimeoutMs?: number;
  /** Deadline for the whole request, body included (default 30 s). */
  timeoutMs?: number;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Longest wait honoured from a Retry-After header (default 60 s). */
  maxRetryAfterMs?: number;
  sleep?: Sleep;
  now?: () => Date;
}

export const TOKEN_HTTP_DEFAULTS = { connectTimeoutMs: 15_000, timeoutMs: 30_000, retries: 3, maxRetryAfterMs: 60_000 } as const;

export const SNDS_SCOPE_SUFFIX = '/.default offline_access';

export function sndsScope(clientId: string): string {
  return `${clientId}${SNDS_SCOPE_SUFFIX}`;
}

export interface Pkce {
  verifier: string;
  challenge: string;
  method: 'S256';
}

const base64url = (bytes: Buffer) => bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

/** RFC 7636: a 43-character verifier from 32 random bytes and its SHA-256 challenge. */
export function createPkce(): Pkce {
  const verifier = base64url(randomBytes(32));
  return { verifier, challenge: pkceChallenge(verifier), method: 'S256' };
}

export function pkceChallenge(verifier: string): string {
  return base64url(createHash('sha256').update(verifier).digest());
}

export function newState(): string {
  return base64url(randomBytes(16));
}

export function buildAuthorizeUrl(settings: OAuthSettings, options: { redirectUri: string; pkce: Pkce; state: string }): string {
  const url = new URL(settings.authorizeUrl);
  url.searchParams.set('client_id', settings.clientId);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('redirect_uri', options.redirectUri);
  url.searchParams.set('response_mode', 'query');
  url.searchParams.set('scope', sndsScope(settings.clientId));
  url.searchParams.set('code_challenge', options.pkce.challenge);
  url.searchParams.set('code_challenge_method', options.pkce.method);
  url.searchParams.set('state', options.state);
  return url.toString();
}

export class OAuthError extends Error {
  constructor(message: string, readonly needsLogin: boolean) {
    super(redact(message));
    this.name = 'OAuthError';
  }
}

/** The code from the URL the browser was sent back to (pasted by the user or seen by the loopback server). */
export function codeFromRedirect(redirected: string, expectedState: string): string {
  let url: URL;
  try {
    url = new URL(redirected.trim());
  } catch {
    throw new OAuthError('that is not a URL: paste the whole address the browser shows after signing in (it starts with http://localhost)', true);
  }
  const error = url.searchParams.get('error');
  if (error) throw new OAuthError(`sign-in failed: ${error}: ${url.searchParams.get('error_description') ?? ''}`.trim(), true);
  if (url.searchParams.get('state') !== expectedState) throw new OAuthError('the sign-in answer does not belong to this login (state mismatch); start `repwatch snds login` again', true);
  const code = url.searchParams.get('code');
  if (!code) throw new OAuthError('the address has no authorization code', true);
  registerSecret(code);
  return code;
}

export interface TokenSet {
  accessToken: string;
  refreshToken: string | null;
  expiresInSeconds: number | null;
}

/** Form fields whose values are secrets: registered before anything is sent, so no error can show them. */
const SECRET_FIELDS = ['code', 'code_verifier', 'refresh_token', 'client_secret'] as const;

/** A token endpoint answer worth another attempt. */
function isRetriedStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

class TokenAttemptFailed extends Error {}

async function tokenRequest(fetch: FetchLike, settings: OAuthSettings, form: Record<string, string>, http: TokenHttpOptions = {}): Promise<TokenSet> {
  const options = { ...TOKEN_HTTP_DEFAULTS, ...definedOnly(http) };
  const sleep = http.sleep ?? realSleep;
  const now = http.now ?? (() => new Date());
  const fields: Record<string, string> = { client_id: settings.clientId, scope: sndsScope(settings.clientId), ...form };
  if (settings.clientSecret) fields.client_secret = settings.clientSecret;
  for (const name of SECRET_FIELDS) registerSecret(fields[name]);
  const body = new URLSearchParams(fields).toString();
  const attempts = Math.max(0, options.retries) + 1;
  let problem = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let waitMs = backoffMs(attempt);
    try {
      const answer = await tokenAttempt(fetch, settings.tokenUrl, body, options);
      if (!isRetriedStatus(answer.status)) return tokenSet(answer.status, answer.text);
      problem = `HTTP ${answer.status}${describeError(answer.text)}`;
      const retryAfter = parseRetryAfter(answer.retryAfter, now());
      if (retryAfter !== null) waitMs = Math.min(retryAfter, options.maxRetryAfterMs);
    } catch (error) {
      if (!(error instanceof TokenAttemptFailed)) throw error;
      problem = error.message;
    }
    if (attempt < attempts) await sleep(waitMs);
  }
  throw new OAuthError(`the token endpoint did not answer usefully after ${attempts} attempt(s): ${problem}; try again later`, false);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** One POST with its two deadlines. Network errors and timeouts become TokenAttemptFailed (retried). */
async function tokenAttempt(
  fetch: FetchLike,
  tokenUrl: string,
  body: string,
  options: { connectTimeoutMs: number; timeoutMs: number },
): Promise<{ status: number; text: string; retryAfter: string | null }> {
  const total = AbortSignal.timeout(options.timeoutMs);
  const start = new AbortController();
  const startTimer = setTimeout(() => start.abort(), options.connectTimeoutMs);
  const late = () =>
    total.aborted ? `no complete answer within ${options.timeoutMs} ms` : start.signal.aborted ? `no response within ${options.connectTimeoutMs} ms` : null;
  try {
    // No Origin header: Microsoft rejects a public client's token request that carries one (AADSTS90023).
    const response = await fetch(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      redirect: 'manual',
      signal: AbortSignal.any([total, start.signal]),
    });
    clearTimeout(startTimer);
    const text = await response.text();
    return { status: response.status, text, retryAfter: response.headers.get('retry-after') };
  } catch (error) {
    // The request itself (with the secrets in its body) is never part of the message.
    throw new TokenAttemptFailed(late() ?? describeNetworkError(error));
  } finally {
    clearTimeout(startTimer);
  }
}

function describeNetworkError(error: unknown): string {
  const e = error as Error & { cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? 'request failed'}${cause ? ` (${cause})` : ''}`;
}

/** ": error (first line of error_description)" from a JSON error body, or nothing. */
function describeError(text: string): string {
  const json = parseJson(text);
  if (typeof json.error !== 'string') return '';
  return `: ${json.error}${typeof json.error_description === 'string' ? ` (${json.error_description.split('\n')[0]})` : ''}`;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function tokenSet(status: number, text: string): TokenSet {
  const json = parseJson(text);
  if (typeof json.access_token === 'string') registerSecret(json.access_token);
  if (typeof json.refresh_token === 'string') registerSecret(json.refresh_token);
  if (status < 200 || status >= 300 || typeof json.access_token !== 'string') {
    const code = typeof json.error === 'string' ? json.error : `HTTP ${status}`;
    const needsLogin = status === 400 || status === 401 || status === 403 || code === 'invalid_grant';
    const detail = `${code}${typeof json.error_description === 'string' ? ` (${json.error_description.split('\n')[0]})` : ''}`;
    throw new OAuthError(needsLogin ? `the token endpoint refused the sign-in: ${detail}; log in again` : `the token endpoint refused: ${detail}`, needsLogin);
  }
  return {
    accessToken: json.access_token,
    refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : null,
    expiresInSeconds: typeof json.expires_in === 'number' ? json.expires_in : null,
  };
}

export function exchangeCode(
  fetch: FetchLike,
  settings: OAuthSettings,
  options: { code: string; verifier: string; redirectUri: string },
  http: TokenHttpOptions = {},
): Promise<TokenSet> {
  return tokenRequest(fetch, settings, { grant_type: 'authorization_code', code: options.code, redirect_uri: options.redirectUri, code_verifier: options.verifier }, http);
}

export function refreshTokens(fetch: FetchLike, settings: OAuthSettings, refreshToken: string, http: TokenHttpOptions = {}): Promise<TokenSet> {
  registerSecret(refreshToken);
  return tokenRequest(fetch, settings, { grant_type: 'refresh_token', refresh_token: refreshToken }, http);
}

/** Where the refresh token lives between runs. */
export interface TokenStore {
  readonly description: string;
  read(): Promise<string | null>;
  write(refreshToken: string): Promise<void>;
}

export const REFRESH_TOKEN_SECRET = 'snds.api.refresh_token';

/** A file readable by its owner only (0600), replaced atomically. */
export function fileTokenStore(path: string): TokenStore {
  return {
    description: `file ${path}`,
    async read() {
      try {
        const value = readFileSync(path, 'utf8').trim();
        registerSecret(value);
        return value || null;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      }
    },
    async write(refreshToken) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      const temp = `${path}.${process.pid}.tmp`;
      writeFileSync(temp, `${refreshToken}\n`, { mode: 0o600 });
      chmodSync(temp, 0o600);
      renameSync(temp, path);
    },
  };
}

/** The table repwatch.stored_secret. */
export function databaseTokenStore(database: Pick<Database, 'query'>): TokenStore {
  return {
    description: 'the database (repwatch.stored_secret)',
    async read() {
      const rows = await database.query<{ value: string }>('select value from repwatch.stored_secret where name = $1', [REFRESH_TOKEN_SECRET]);
      const value = rows[0]?.value ?? null;
      registerSecret(value);
      return value;
    },
    async write(refreshToken) {
      await database.query(
        `insert into repwatch.stored_secret (name, value, updated_at) values ($1, $2, now())
         on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at`,
        [REFRESH_TOKEN_SECRET, refreshToken],
      );
    },
  };
}
