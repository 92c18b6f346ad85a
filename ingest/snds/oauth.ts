import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from '../../db/connection.js';
import { registerSecret, redact } from '../../lib/redact.js';
import type { FetchLike } from './fetch-export.js';

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
}

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

async function tokenRequest(fetch: FetchLike, settings: OAuthSettings, form: Record<string, string>): Promise<TokenSet> {
  // No Origin header: Microsoft rejects a public client's token request that carries one (AADSTS90023).
  const response = await fetch(settings.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ client_id: settings.clientId, scope: sndsScope(settings.clientId), ...form }).toString(),
    redirect: 'manual',
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // reported below
  }
  if (typeof json.access_token === 'string') registerSecret(json.access_token);
  if (typeof json.refresh_token === 'string') registerSecret(json.refresh_token);
  if (!response.ok || typeof json.access_token !== 'string') {
    const code = typeof json.error === 'string' ? json.error : `HTTP ${response.status}`;
    const needsLogin = response.status === 400 || response.status === 401 || response.status === 403 || code === 'invalid_grant';
    throw new OAuthError(`the token endpoint refused: ${code}${typeof json.error_description === 'string' ? ` (${json.error_description.split('\n')[0]})` : ''}`, needsLogin);
  }
  return {
    accessToken: json.access_token,
    refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : null,
    expiresInSeconds: typeof json.expires_in === 'number' ? json.expires_in : null,
  };
}

export function exchangeCode(fetch: FetchLike, settings: OAuthSettings, options: { code: string; verifier: string; redirectUri: string }): Promise<TokenSet> {
  return tokenRequest(fetch, settings, { grant_type: 'authorization_code', code: options.code, redirect_uri: options.redirectUri, code_verifier: options.verifier });
}

export function refreshTokens(fetch: FetchLike, settings: OAuthSettings, refreshToken: string): Promise<TokenSet> {
  registerSecret(refreshToken);
  return tokenRequest(fetch, settings, { grant_type: 'refresh_token', refresh_token: refreshToken });
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
