import { join } from 'node:path';
import type { Database } from '../../db/connection.js';
import type { Config } from '../../config/schema.js';
import { utcDay } from '../../lib/clock.js';
import { registerSecret } from '../../lib/redact.js';
import { addInput, fetchAndIngest, newFeedResult, noteFutureDays, recompute, refetchDays, SndsNeedsPersonError, type SndsFeedResult, type SndsJobContext } from './ingest-feed.js';
import { databaseTokenStore, fileTokenStore, OAuthError, refreshTokens, type TokenStore } from './oauth.js';
import { emptyDaysWarning } from './empty-days.js';
import { API_FEED } from './api-feed.js';

/**
 * The SNDS job for the REST API (for users whose links keep expiring): a fresh access token from the
 * stored refresh token (the new refresh token stored at once), then one request per day and one for
 * the IP Status list. 404 is "no data that day" for a day's IP Data only; the IP Status endpoint has
 * no day, so a 404 there is a failed download (exit 1) and the previous block list stays current
 * (recorded as empty, it would unblock every IP). 401/403 or a redirect is "log in again" (exit 3).
 */

export { API_FEED };

export type SndsApiConfig = NonNullable<Config['snds']['api']>;

export function tokenStoreFor(api: SndsApiConfig, database: Database, home: string): TokenStore {
  return api.tokenStore === 'database' ? databaseTokenStore(database) : fileTokenStore(api.tokenFile ?? join(home, 'snds-refresh-token'));
}

export interface IngestSndsApiOptions extends SndsJobContext {
  api: SndsApiConfig;
  tokenStore: TokenStore;
  days?: readonly string[];
  skipRecompute?: boolean;
}

export async function ingestSndsApi(options: IngestSndsApiOptions): Promise<SndsFeedResult> {
  const { api, config, clock } = options;
  const result = newFeedResult(API_FEED);
  const login = (reason: string) =>
    new SndsNeedsPersonError(`SNDS API: ${reason}. Run \`repwatch snds login\` to sign in again (the token is kept in ${options.tokenStore.description}).`, API_FEED, result);

  const refreshToken = await options.tokenStore.read();
  if (!refreshToken) throw login('no stored sign-in');
  let accessToken: string;
  try {
    const tokens = await refreshTokens(options.fetch, api, refreshToken, { connectTimeoutMs: config.snds.connectTimeoutMs, timeoutMs: config.snds.timeoutMs, retries: config.snds.retries });
    // Microsoft has already invalidated the old refresh token: store its replacement before anything else.
    if (tokens.refreshToken) await options.tokenStore.write(tokens.refreshToken);
    accessToken = tokens.accessToken;
  } catch (error) {
    if (error instanceof OAuthError && error.needsLogin) throw login(error.message);
    throw error;
  }
  registerSecret(accessToken);
  const headers = { authorization: `Bearer ${accessToken}`, accept: 'application/json' };
  const base = api.baseUrl.replace(/\/+$/, '');
  const days = options.days ?? refetchDays(utcDay(clock.now()), config.snds.refetchDays);
  for (const day of days) {
    const input = await fetchAndIngest(
      options,
      { source: 'api', kind: 'ip_data', feed: API_FEED, location: `${base}/report/data/${day}`, requestedDay: day, timezone: api.timezone },
      'api',
      login,
      headers,
    );
    addInput(result, input);
  }
  const status = await fetchAndIngest(
    options,
    { source: 'api', kind: 'ip_status', feed: API_FEED, location: `${base}/report/status/ip`, requestedDay: null, timezone: api.timezone },
    'api',
    login,
    headers,
  );
  addInput(result, status);
  const quiet = await emptyDaysWarning(options.database, API_FEED);
  if (quiet) result.warnings.push(quiet);
  noteFutureDays(result, utcDay(clock.now()));
  if (!options.skipRecompute) await recompute(options, result);
  return result;
}
