/**
 * The one choke point for secrets. SNDS automated links carry their key in the query string, the REST
 * API uses bearer and refresh tokens, mailboxes have passwords. Every log line, error message and stored
 * location passes through here, so a secret registered once is scrubbed everywhere.
 */

const registeredSecrets = new Set<string>();

/** Query parameters whose values are secrets whatever their owner registered. */
const SECRET_PARAMS = /([?&;](?:key|token|access_token|refresh_token|code|sig|signature|password|pwd|secret|client_secret|apikey|api_key)=)[^&#\s"'<>]*/gi;
/** user:password@ in URLs (postgres://, smtp://, imap://). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^/\s@]+)@/gi;
/** Authorization headers and bearer tokens that end up in error text. */
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g;
/** The new SNDS portal puts the key in the path of the link (…/SNDS/Auto/<key>/…): long opaque segments. */
const OPAQUE_PATH_SEGMENT = /(\/)(?=[A-Za-z0-9_-]{24,}(?:[/?#]|$))[A-Za-z0-9_-]{24,}/g;

export const REDACTED = '[REDACTED]';

/** Remember a value that must never be printed (a key, a token, a password). Short values are ignored
 * because redacting "1" or "ab" would mangle unrelated text. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 6) return;
  registeredSecrets.add(value);
  // Secrets also travel URL-encoded inside other URLs.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) registeredSecrets.add(encoded);
}

/** Register every secret-looking part of a URL: its query parameter values and credentials. */
export function registerSecretUrl(url: string | undefined | null): void {
  if (!url) return;
  try {
    const parsed = new URL(url);
    for (const [, value] of parsed.searchParams) registerSecret(value);
    if (parsed.password) registerSecret(decodeURIComponent(parsed.password));
    for (const segment of parsed.pathname.split('/')) if (segment.length >= 24) registerSecret(segment);
  } catch {
    registerSecret(url);
  }
}

export function redact(text: string): string {
  let out = text;
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out
    .replace(SECRET_PARAMS, `$1${REDACTED}`)
    .replace(URL_CREDENTIALS, `$1$2:${REDACTED}@`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(OPAQUE_PATH_SEGMENT, `$1${REDACTED}`);
}

/** A URL safe to show or store: the host and path a person recognises, with its secrets removed. */
export function redactUrl(url: string): string {
  return redact(url);
}

/** Deep-redact strings inside a log object or error (bounded depth; cycles are cut). */
export function redactValue(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (value instanceof Error) {
    return { type: value.name, message: redact(value.message), stack: value.stack ? redact(value.stack) : undefined };
  }
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = redactValue(item, depth + 1, seen);
  return out;
}

/** Error messages leave the process through here (CLI edge, ledger detail). */
export function redactError(error: unknown): string {
  if (error instanceof Error) return redact(error.message);
  return redact(String(error));
}

/** For tests: forget what was registered. */
export function clearRegisteredSecrets(): void {
  registeredSecrets.clear();
}
