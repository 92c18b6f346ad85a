import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../config/load-config.js';
import { isPostgresUrl, type Config } from '../config/schema.js';
import { openDatabase, defaultHome, type Database } from '../db/connection.js';
import { migrate, SchemaTooNewError, type MigrationResult } from '../db/migrate.js';
import { createLogger, LOG_LEVELS, isLogLevel, type Logger } from '../lib/logger.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { registerSecretUrl } from '../lib/redact.js';
import { CliError, ExitCode } from './exit-codes.js';

/** What every command works with. Built once at the CLI edge and passed down; nothing below reads
 * process.env, the clock or stdout on its own. */
export interface CommandContext {
  config: Config;
  configPath: string | null;
  /** ./repwatch.yaml when it exists and this command did not read it (the demo). */
  unreadConfigPath: string | null;
  home: string;
  logger: Logger;
  clock: Clock;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  /** Where `-` inputs and pasted answers are read from. */
  stdin: NodeJS.ReadableStream;
  /** Opens the database and brings its schema up to date on first use. */
  database(): Promise<Database>;
  /** What bringing the schema up to date did and found, once database() has resolved. */
  migration?: MigrationResult;
  /** From now on database() is the embedded one whatever DATABASE_URL or database.url say (the demo's
   * sample data never goes to a server). Call before database(); true when a server was set aside. */
  useEmbeddedDatabase(): boolean;
  close(): Promise<void>;
}

export interface GlobalOptions {
  config?: string;
  logLevel?: string;
  /** false: read a configuration file only when --config or REPWATCH_CONFIG names one, never
   * ./repwatch.yaml by itself. Set by the demo, not a flag: a real setup's file names secrets the
   * bundled sample does not need (and fails to load without them). */
  localConfig?: boolean;
}

export interface ContextOverrides {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  clock?: Clock;
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
  fetch?: typeof fetch;
}

export function createContext(options: GlobalOptions, overrides: ContextOverrides = {}): CommandContext {
  const env = overrides.env ?? process.env;
  const cwd = overrides.cwd ?? process.cwd();
  let loaded;
  try {
    loaded = loadConfig({ path: options.config, env, cwd, localFile: options.localConfig ?? true });
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, ExitCode.usage);
    throw error;
  }
  const home = defaultHome(env, cwd);
  const config = loaded.config;
  config.reports.outDir ??= join(home, 'reports');
  const logger = createLogger({ level: logLevel(options.logLevel, env), destination: overrides.stderr ?? process.stderr });
  let database: Promise<Database> | undefined;
  let databaseUrl =
    checkDatabaseUrl(env.DATABASE_URL, 'DATABASE_URL') ||
    checkDatabaseUrl(readDatabaseUrlFile(env.DATABASE_URL_FILE), 'DATABASE_URL_FILE') ||
    checkUrlEncoding(config.database?.url, 'database.url');
  registerSecretUrl(databaseUrl);

  const context: CommandContext = {
    config,
    configPath: loaded.path,
    unreadConfigPath: loaded.unreadLocalPath,
    home,
    logger,
    clock: overrides.clock ?? systemClock,
    env,
    stdout: overrides.stdout ?? process.stdout,
    stdin: overrides.stdin ?? process.stdin,
    useEmbeddedDatabase() {
      if (database) throw new Error('useEmbeddedDatabase() after the database was opened');
      const setAside = Boolean(databaseUrl);
      databaseUrl = undefined;
      return setAside;
    },
    database() {
      database ??= (async () => {
        const db = await openDatabase({ url: databaseUrl, home });
        try {
          const result = await migrate(db);
          context.migration = result;
          if (result.applied.length) {
            logger.info({ applied: result.applied.map((m) => `${m.id}-${m.name}`), database: db.description }, 'schema migrated');
            // Said when the schema changes (an install, an upgrade) and by every `repwatch migrate`, not on every cron run.
            for (const warning of result.warnings) logger.warn({ database: db.description }, warning);
          }
        } catch (error) {
          await db.close();
          if (error instanceof SchemaTooNewError) throw new CliError(error.message, ExitCode.failed);
          const unreachable = connectionProblem(error);
          if (unreachable) {
            throw new CliError(`cannot use the database (${db.description}): ${unreachable}; check DATABASE_URL or database.url (host, port, database name, user and password)`, ExitCode.failed);
          }
          throw error;
        }
        return db;
      })();
      return database;
    },
    async close() {
      if (database) await (await database.catch(() => undefined))?.close();
    },
  };
  return context;
}

/** --log-level, else REPWATCH_LOG_LEVEL (from this context's environment), else info: exit 2 if not a level. */
function logLevel(option: string | undefined, env: NodeJS.ProcessEnv): string {
  const [level, source] = option !== undefined ? [option, '--log-level'] : [env.REPWATCH_LOG_LEVEL || 'info', 'REPWATCH_LOG_LEVEL'];
  if (!isLogLevel(level)) throw new CliError(`${source}: log level must be one of ${LOG_LEVELS.join(', ')}`, ExitCode.usage);
  return level;
}

/** A database URL from the environment must be postgres://…; the value is never printed (it may hold a password). */
function checkDatabaseUrl(url: string | undefined, source: string): string | undefined {
  if (!url) return url;
  registerSecretUrl(url);
  if (!isPostgresUrl(url)) throw new CliError(`${source} is not a postgres:// URL, such as postgres://user@host:5432/database`, ExitCode.usage);
  return checkUrlEncoding(url, source);
}

/**
 * pg decodes the user, password and database name, and fails late with a bare "URI malformed" when a
 * %-escape decodes to bytes that are not UTF-8 (`%C3%28`). A lone % (`50%off`) it takes literally, and
 * so does this check.
 */
function checkUrlEncoding(url: string | undefined, source: string): string | undefined {
  if (!url) return url;
  const { username, password, pathname } = new URL(url);
  try {
    for (const part of [username, password, pathname]) decodeURIComponent(part.replace(/%(?![0-9a-f]{2})/gi, '%25'));
  } catch {
    throw new CliError(`${source}: a %-escape in the user, password or database name is not valid UTF-8; write a literal % as %25`, ExitCode.usage);
  }
  return url;
}

/**
 * Why the server could not be used, in words, when the error is about reaching or entering it (not
 * about a statement): refused or unknown host, timeout, no such database, login refused. Null otherwise.
 */
function connectionProblem(error: unknown): string | null {
  const code = (error as { code?: unknown })?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the server running, on this host and port?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'the server did not answer';
    case '3D000':
      return 'the database does not exist (create it, or name another)';
    case '28P01':
    case '28000':
      return 'the server refused the login';
    default:
      return null;
  }
}

/** Containers pass secrets as files: DATABASE_URL_FILE names one. */
function readDatabaseUrlFile(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new CliError(`DATABASE_URL_FILE: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, ExitCode.usage);
  }
}
