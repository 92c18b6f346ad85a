import { readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, isHttpUrl, isPostgresUrl, isSmtpUrl, SMTP_URL, type Config } from './schema.js';
import { registerSecret, registerSecretUrl } from '../lib/redact.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or null when built-in defaults are used. */
  path: string | null;
  /** ./repwatch.yaml when it exists but was not read (`localFile: false`). */
  unreadLocalPath: string | null;
}

/**
 * Which file: --config, then REPWATCH_CONFIG, then ./repwatch.yaml when present (unless `localFile` is
 * false). No file is fine: every key has a default, and one-off commands (`ingest snds --file`) need none.
 */
export function findConfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv, cwd: string, localFile = true): string | null {
  if (explicit) return resolve(cwd, explicit);
  if (env.REPWATCH_CONFIG) return resolve(cwd, env.REPWATCH_CONFIG);
  const local = resolve(cwd, 'repwatch.yaml');
  return localFile && existsSync(local) ? local : null;
}

export function loadConfig(options: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string; localFile?: boolean } = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const path = findConfigPath(options.path, env, cwd, options.localFile ?? true);
  if (!path) {
    const local = resolve(cwd, 'repwatch.yaml');
    return { config: parseConfig({}, { env, baseDir: cwd }), path: null, unreadLocalPath: options.localFile === false && existsSync(local) ? local : null };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(error as Error).message}`);
  }
  return { config: parseConfig(raw, { env, baseDir: dirname(path), source: path }), path, unreadLocalPath: null };
}

/** Validate a parsed document, expand ${ENV} references and resolve `*File` secrets. */
export function parseConfig(
  raw: unknown,
  options: { env?: NodeJS.ProcessEnv; baseDir?: string; source?: string } = {},
): Config {
  const env = options.env ?? process.env;
  const baseDir = options.baseDir ?? process.cwd();
  const expanded = expandEnv(raw, env, []);
  const result = configSchema.safeParse(expanded);
  if (!result.success) throw new ConfigError(formatIssues(result.error, options.source));
  const config = result.data;
  resolveSecretFiles(config, (path) => resolveConfigPath(path, baseDir, env));
  registerConfigSecrets(config);
  return config;
}

function formatIssues(error: z.ZodError, source?: string): string {
  const lines = error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => (path === '(top level)' ? k : `${path}.${k}`));
      return `unknown key ${keys.join(', ')}`;
    }
    return `${path}: ${issue.message}`;
  });
  return `invalid configuration${source ? ` in ${source}` : ''}:\n  ${lines.join('\n  ')}`;
}

function expandEnv(value: unknown, env: NodeJS.ProcessEnv, path: (string | number)[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/gi, (_, name: string) => {
      const found = env[name];
      if (found === undefined) throw new ConfigError(`${path.join('.')}: environment variable ${name} is not set`);
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => expandEnv(item, env, [...path, i]));
  if (value && typeof value === 'object') {
    // Object.entries + a fresh null-prototype object: a key named __proto__ stays a plain key.
    const out: Record<string, unknown> = Object.create(null);
    for (const [key, item] of Object.entries(value)) {
      // "key:" with nothing after it (a section whose lines are all commented out) means "defaults".
      if (item === null) continue;
      out[key] = expandEnv(item, env, [...path, key]);
    }
    return { ...out };
  }
  return value;
}

/**
 * A path from the configuration: a leading `~` or `~/` is the home directory, as a shell would read it
 * (the example file shows such paths, and resolving `~/x` against the config's folder made a directory
 * named `~`); any other relative path is relative to the configuration file's folder.
 */
export function resolveConfigPath(path: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path === '~' || path.startsWith('~/')) return resolve(env.HOME || homedir(), path.slice(2));
  return resolve(baseDir, path);
}

type ResolvePath = (path: string) => string;

function readSecretFile(file: string, resolvePath: ResolvePath, key: string): string {
  const full = resolvePath(file);
  try {
    return readFileSync(full, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(`${key}: cannot read ${full}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** A secret read from a file gets the check its inline key has; the message never shows the value. */
function readSecretUrlFile(file: string, resolvePath: ResolvePath, key: string, valid: (url: string) => boolean, rule: string): string {
  const url = readSecretFile(file, resolvePath, key);
  if (!valid(url)) throw new ConfigError(`${key}: the file's content ${rule}`);
  return url;
}

function resolveSecretFiles(config: Config, resolvePath: ResolvePath): void {
  config.snds.feeds.forEach((feed, i) => {
    if (feed.dataUrlFile) feed.dataUrl = readSecretUrlFile(feed.dataUrlFile, resolvePath, `snds.feeds[${i}].dataUrlFile`, isHttpUrl, 'must be an http:// or https:// URL');
    if (feed.statusUrlFile) feed.statusUrl = readSecretUrlFile(feed.statusUrlFile, resolvePath, `snds.feeds[${i}].statusUrlFile`, isHttpUrl, 'must be an http:// or https:// URL');
  });
  for (const [section, mailboxes] of [['jmrp', config.jmrp.mailboxes], ['bounces', config.bounces.mailboxes]] as const) {
    mailboxes.forEach((mailbox, i) => {
      if (mailbox.imap?.passwordFile) {
        mailbox.imap.password = readSecretFile(mailbox.imap.passwordFile, resolvePath, `${section}.mailboxes[${i}].imap.passwordFile`);
      }
      if (mailbox.maildir) mailbox.maildir = resolvePath(mailbox.maildir);
      if (mailbox.mbox) mailbox.mbox = resolvePath(mailbox.mbox);
    });
  }
  if (config.jmrp.recipientSaltFile) config.jmrp.recipientSalt = readSecretFile(config.jmrp.recipientSaltFile, resolvePath, 'jmrp.recipientSaltFile');
  if (config.reports.email?.smtpUrlFile) config.reports.email.smtpUrl = readSecretUrlFile(config.reports.email.smtpUrlFile, resolvePath, 'reports.email.smtpUrlFile', isSmtpUrl, SMTP_URL);
  if (config.database?.urlFile) config.database.url = readSecretUrlFile(config.database.urlFile, resolvePath, 'database.urlFile', isPostgresUrl, 'must be a postgres:// URL');
  if (config.snds.api?.tokenFile) config.snds.api.tokenFile = resolvePath(config.snds.api.tokenFile);
  if (config.reports.outDir) config.reports.outDir = resolvePath(config.reports.outDir);
}

function registerConfigSecrets(config: Config): void {
  for (const feed of config.snds.feeds) {
    registerSecretUrl(feed.dataUrl);
    registerSecretUrl(feed.statusUrl);
  }
  for (const mailbox of [...config.jmrp.mailboxes, ...config.bounces.mailboxes]) registerSecret(mailbox.imap?.password);
  registerSecret(config.jmrp.recipientSalt);
  registerSecretUrl(config.reports.email?.smtpUrl);
  registerSecretUrl(config.database?.url);
}

/** The defaults, for tests and one-off commands. */
export function defaultConfig(): Config {
  return parseConfig({});
}
