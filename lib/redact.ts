/**
 * The one choke point for secrets. SNDS automated links carry their key in the query string or the
 * path, the REST API uses bearer and refresh tokens, mailboxes have passwords. Every log line, error
 * message and stored location passes through here, so a secret registered once is scrubbed everywhere.
 */

const registeredSecrets = new Set<string>();
/** The registered secrets, longest first (a longer form is replaced before a shorter one inside it). */
let ordered: string[] | null = null;
/** The same as UTF-8 bytes, for scanning bodies. */
let orderedBytes: Buffer[] | null = null;

/** Query parameters whose values are secrets whatever their owner registered. */
const SECRET_PARAMS = /([?&;](?:key|token|access_token|refresh_token|code|sig|signature|password|pwd|secret|client_secret|apikey|api_key)=)[^&#\s"'<>]*/gi;
/** user:password@ in URLs (postgres://, smtp://, imap://). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]+):([^/\s@]+)@/gi;
/** Authorization headers and bearer tokens that end up in error text. */
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/g;
/** The new SNDS portal puts the key in the path of the link (…/SNDS/Auto/<key>/…): long path segments,
 * redacted when they look like keys (see looksLikeKey), not when they are words (ip-domain-management-snds). */
const LONG_PATH_SEGMENT = /\/([A-Za-z0-9_~-]{24,})(?=[/?#\s"'<>)\]]|$)/g;
/** The one query parameter of an SNDS link that is no secret and that people need to see. */
const PUBLIC_PARAMS = new Set(['date']);

/** Unregistered path segments must be this long to be redacted on looks alone. */
const UNREGISTERED_KEY_LENGTH = 24;
/** Path segments of a registered secret-bearing link are registered from this length when they look like keys. */
const REGISTERED_KEY_LENGTH = 16;

export const REDACTED = '[REDACTED]';

const GUID = /^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$/i;
/** A word a person wrote: lower case, Capitalised, CamelCase or UPPER case letters, or a number. */
const WORD = /^(?:[a-z]+(?:[A-Z][a-z]+)*|(?:[A-Z][a-z]+)+|[A-Z]+|[0-9]+)$/;

/**
 * Does a path segment or value look like a key (a GUID, or a long random token) rather than words?
 * Random tokens mix letters and digits, or upper and lower case at random; hyphenated words
 * (ip-domain-management-snds), dates (2026-11-26) and CamelCase names do not.
 */
export function looksLikeKey(segment: string, minLength = REGISTERED_KEY_LENGTH): boolean {
  if (GUID.test(segment)) return true;
  if (segment.length < minLength) return false;
  // Short pieces between separators (v2, x64) say nothing; a long piece that is no word does, and so
  // does a "word" too long to be one.
  return segment.split(/[-_.~]+/).some((part) => (part.length > 3 && !WORD.test(part)) || part.length >= 24);
}

function invalidate(): void {
  ordered = null;
  orderedBytes = null;
  cores = null;
}

/** For each registered form, the run of it that SecretScanner searches for first (see scanCores). */
const coreOf = new Map<string, string>();

/** Characters that percent- and form-encoding leave as they are. */
const UNTOUCHED_RUN = /[A-Za-z0-9._*-]+/g;

/** The longest run of untouched characters: every encoded form of a value contains its value's run. */
function longestRun(value: string): string {
  return (value.match(UNTOUCHED_RUN) ?? []).reduce((best, run) => (run.length > best.length ? run : best), '');
}

function add(form: string, core = longestRun(form)): void {
  if (form.length < 6 || registeredSecrets.has(form)) return;
  registeredSecrets.add(form);
  coreOf.set(form, core);
  invalidate();
  // Percent-escapes may come back in lower case from some clients.
  if (/%[0-9A-F]{2}/.test(form)) {
    const lower = form.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
    if (lower !== form) {
      registeredSecrets.add(lower);
      coreOf.set(lower, core);
    }
  }
}

/** A value as URLSearchParams writes it (application/x-www-form-urlencoded: space as +, more escaped). */
function formEncode(value: string): string {
  return new URLSearchParams([['x', value]]).toString().slice(2);
}

/** Remember a value that must never be printed (a key, a token, a password), with the forms it takes
 * inside URLs and form bodies. Short values are ignored because redacting "1" or "ab" would mangle
 * unrelated text. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < 6) return;
  // A GUID means the same in either case, and a server may echo it in the other one.
  const spellings = GUID.test(value) ? new Set([value, value.toLowerCase(), value.toUpperCase()]) : [value];
  for (const spelling of spellings) {
    const core = longestRun(spelling);
    add(spelling, core);
    add(encodeURIComponent(spelling), core);
    add(formEncode(spelling), core);
  }
}

function tryDecode(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** A query value that is no secret: the date, or a short word (format=download, view=IpStatus);
 * registering those would redact the same words in every log line. Any value still shows as
 * [REDACTED] in a stored or shown link (redactUrl). */
function isPlainValue(name: string, value: string): boolean {
  if (PUBLIC_PARAMS.has(name.toLowerCase())) return true;
  return value.length < 12 && value.split(/[-_]/).every((part) => /^[A-Za-z]+$/.test(part) && WORD.test(part));
}

/** The name=value pairs of a query string as written (no decoding), names decoded for comparison. */
function queryPairs(search: string): { rawName: string; name: string; raw: string; hasValue: boolean }[] {
  return search
    .split(/[&;]/)
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=');
      const rawName = at < 0 ? pair : pair.slice(0, at);
      return { rawName, name: tryDecode(rawName.replace(/\+/g, ' ')) ?? rawName, raw: at < 0 ? '' : pair.slice(at + 1), hasValue: at >= 0 };
    });
}

/** The query of a URL exactly as it was written (the parser escapes some characters, e.g. ' and spaces). */
function writtenQuery(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return '';
  const end = url.indexOf('#', start);
  return url.slice(start + 1, end < 0 ? undefined : end).trim();
}

/**
 * Register every secret-looking part of a URL: each query value (except `date` and plain words) in
 * every form it travels in (as written, decoded both ways, re-encoded by URLSearchParams and by
 * encodeURIComponent), its password, and, for web links, path segments that look like keys.
 */
export function registerSecretUrl(url: string | undefined | null): void {
  if (!url) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    registerSecret(url);
    return;
  }
  for (const search of new Set([parsed.search.slice(1), writtenQuery(url)])) {
    for (const { name, raw } of queryPairs(search)) {
      const asForm = tryDecode(raw.replace(/\+/g, ' '));
      const asUri = tryDecode(raw);
      if (isPlainValue(name, asForm ?? raw)) continue;
      // The substring exactly as written (a URL that is never re-encoded shows it so).
      add(raw, asUri !== null ? longestRun(asUri) : undefined);
      // URLSearchParams reads + as a space; decodeURIComponent keeps it: both readings, each re-encoded.
      if (asForm !== null) registerSecret(asForm);
      if (asUri !== null) registerSecret(asUri);
    }
  }
  if (parsed.password) registerSecret(tryDecode(parsed.password) ?? parsed.password);
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') {
    for (const raw of parsed.pathname.split('/')) {
      const segment = tryDecode(raw) ?? raw;
      if (looksLikeKey(segment)) {
        add(raw, longestRun(segment));
        registerSecret(segment);
      }
    }
  }
}

function secretsLongestFirst(): string[] {
  ordered ??= [...registeredSecrets].sort((a, b) => b.length - a.length);
  return ordered;
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secretsLongestFirst()) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out
    .replace(SECRET_PARAMS, `$1${REDACTED}`)
    .replace(URL_CREDENTIALS, `$1$2:${REDACTED}@`)
    .replace(BEARER, `$1${REDACTED}`)
    .replace(LONG_PATH_SEGMENT, (whole, segment: string) => (looksLikeKey(segment, UNREGISTERED_KEY_LENGTH) ? `/${REDACTED}` : whole));
}

/**
 * A URL safe to show or store: its origin and path (keys in the path redacted) and its `date`
 * parameter; every other query value is replaced by [REDACTED], whatever its name, and any
 * user:password and fragment are dropped. Text that is not a URL is redacted as text.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redact(url);
  }
  if (parsed.origin === 'null') return redact(url);
  const query = queryPairs(parsed.search.slice(1)).map(({ rawName, name, raw, hasValue }) =>
    hasValue && PUBLIC_PARAMS.has(name.toLowerCase()) && /^[0-9-]*$/.test(raw) ? `${rawName}=${raw}` : `${redact(rawName)}=${REDACTED}`,
  );
  // A link's path is read with the registered threshold: a key there is shorter than in free text.
  const path = parsed.pathname
    .split('/')
    .map((raw) => (looksLikeKey(tryDecode(raw) ?? raw) ? REDACTED : redact(raw)))
    .join('/');
  return `${parsed.origin}${path}${query.length ? `?${query.join('&')}` : ''}`;
}

/**
 * Does a body hold any registered secret, in any registered form? Feed it the body's pieces in order
 * (a secret split between two pieces is found too); no text is decoded and nothing is copied but the
 * seams. With nothing registered it costs nothing.
 *
 * The forms of one secret (as written, percent-encoded, form-encoded) all contain its longest run of
 * characters no encoding touches, so a piece is first searched for those runs only (about one search
 * per secret instead of one per form; measured on 100 MB with five keys registered: 19 forms took
 * ~300 ms, their runs ~90 ms); only a piece where one shows up is searched for the forms themselves.
 */
export class SecretScanner {
  private readonly needles: readonly Buffer[];
  private readonly cores: readonly Buffer[];
  private readonly overlap: number;
  private tail: Buffer = Buffer.alloc(0);
  found = false;

  constructor() {
    this.needles = registeredSecretBytes();
    this.cores = scanCores();
    this.overlap = this.needles.reduce((most, needle) => Math.max(most, needle.length), 0) - 1;
  }

  get idle(): boolean {
    return this.needles.length === 0;
  }

  /** Look at the next piece; true once a secret has been seen. */
  push(piece: Buffer): boolean {
    if (this.found || this.needles.length === 0 || piece.length === 0) return this.found;
    if (this.tail.length) {
      const seam = Buffer.concat([this.tail, piece.subarray(0, this.overlap)]);
      if (this.hit(seam)) return (this.found = true);
    }
    if (this.hit(piece)) return (this.found = true);
    this.tail = piece.length >= this.overlap ? Buffer.from(piece.subarray(piece.length - this.overlap)) : Buffer.concat([this.tail, piece]).subarray(-this.overlap);
    return false;
  }

  private hit(buffer: Buffer): boolean {
    if (!this.cores.some((core) => buffer.includes(core))) return false;
    return this.needles.some((needle) => buffer.includes(needle));
  }
}

let cores: Buffer[] | null = null;

/** The runs to search for first: each registered form's core (itself when it has no run of 4 or
 * more), without runs that contain a shorter kept one (the shorter one finds all the longer would). */
function scanCores(): Buffer[] {
  if (cores) return cores;
  const runs = new Set<string>();
  for (const form of registeredSecrets) {
    const core = coreOf.get(form) ?? '';
    runs.add(core.length >= 4 && form.includes(core) ? core : form);
  }
  const kept: string[] = [];
  for (const run of [...runs].sort((a, b) => a.length - b.length)) if (!kept.some((shorter) => run.includes(shorter))) kept.push(run);
  cores = kept.map((run) => Buffer.from(run, 'utf8'));
  return cores;
}

/** The registered secrets as UTF-8 bytes, longest first (to redact a copy of a body byte for byte). */
export function registeredSecretBytes(): readonly Buffer[] {
  orderedBytes ??= secretsLongestFirst().map((secret) => Buffer.from(secret, 'utf8'));
  return orderedBytes;
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
  coreOf.clear();
  invalidate();
}
