import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { PGlite, type Transaction as PGliteTransaction } from '@electric-sql/pglite';
import { PGliteDialect } from 'kysely-pglite-dialect';
import type { Schema } from './schema/index.js';
import { COPY_BINARY_HEADER, COPY_BINARY_TRAILER } from './copy-binary.js';
import { DEFAULT_LOCK_STALE_MS, DEFAULT_LOCK_WAIT_MS, lockDataDir } from './embedded-lock.js';

export { EmbeddedDatabaseBusyError } from './embedded-lock.js';

export type BackendKind = 'postgres' | 'pglite';

/**
 * One session on one connection: a Kysely bound to it, raw SQL, and the bulk path (COPY). Work that
 * must see its own writes, hold a session lock or run in a transaction gets a Session.
 */
export interface Session {
  readonly kind: BackendKind;
  readonly db: Kysely<Schema>;
  /** Raw SQL with $1 placeholders; rows typed by the caller. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Several statements at once, no parameters (migrations, scripts). */
  exec(text: string): Promise<void>;
  /**
   * Bulk-load CSV text (no header, comma separated, standard quoting, \N never used: empty unquoted =
   * NULL) into `table (columns)`. The source is a stream of CSV chunks; returns rows copied.
   */
  copyCsv(table: string, columns: readonly string[], source: AsyncIterable<string | Buffer>): Promise<number>;
  /**
   * Bulk-load tuples already in binary COPY format (db/copy-binary.ts, without header or trailer: the
   * session frames each statement) into `table (columns)`; returns rows copied. Each chunk holds whole
   * tuples, and column types must match the table's exactly.
   */
  copyBinary(table: string, columns: readonly string[], tuples: AsyncIterable<Buffer>): Promise<number>;
}

export interface Database {
  readonly kind: BackendKind;
  /** Pooled Kysely for ordinary queries. */
  readonly db: Kysely<Schema>;
  /** Where it lives, with credentials removed (for logs and `status`). */
  readonly description: string;
  /**
   * Run fn inside BEGIN … COMMIT on one connection; ROLLBACK when it throws. Inside fn use only the
   * session: on PGlite the pooled `db` waits for the transaction to end, so using it there deadlocks.
   */
  transaction<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  /** Run fn on one connection without a transaction (session-level advisory locks). */
  withSession<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** PGlite only: the whole data directory as a tarball (tests snapshot a migrated database). */
  dumpDataDir?: () => Promise<Blob>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres://… selects a server; otherwise PGlite under `home`/db. */
  url?: string | undefined;
  home?: string | undefined;
  /** PGlite only: keep everything in memory (tests). */
  memory?: boolean;
  /** PGlite only: start from a dumped data directory (tests start from a migrated snapshot). */
  loadDataDir?: Blob | File;
  poolSize?: number;
  applicationName?: string;
  /**
   * PGlite on disk only: the data directory serves one process at a time. A second process waits this
   * long for it (default 10 000 ms) and then fails with EmbeddedDatabaseBusyError.
   */
  lockWaitMs?: number | undefined;
  /**
   * PGlite on disk only: a lock on the data directory not refreshed for this long belongs to a dead
   * process and is taken over (default 20 000 ms). Every process on one directory must agree.
   */
  lockStaleMs?: number | undefined;
}

const OID = { INT8: 20, NUMERIC: 1700, DATE: 1082 } as const;

/** Counts as numbers (bigint would come back as text), rates as numbers, dates as YYYY-MM-DD strings
 * (never a Date at local midnight, which shifts a day in any zone west of UTC). */
function pgTypeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === OID.INT8) return (v) => Number(v);
  if (oid === OID.NUMERIC) return (v) => Number(v);
  if (oid === OID.DATE) return (v) => v;
  return pg.types.getTypeParser(oid, format as 'text');
}

export function defaultHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(cwd, env.REPWATCH_HOME ?? '.repwatch');
}

export async function openDatabase(options: OpenOptions = {}): Promise<Database> {
  if (options.url) return openPostgres(options.url, options);
  return openPglite(options);
}

async function openPostgres(url: string, options: OpenOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 5,
    application_name: options.applicationName ?? 'repwatch',
    types: { getTypeParser: pgTypeParser as typeof pg.types.getTypeParser },
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener Node exits.
  pool.on('error', () => undefined);
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const parsed = new URL(url);
  const description = `postgres ${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;

  const sessionFor = (client: pg.PoolClient): Session => {
    const single = { connect: async () => ({ query: client.query.bind(client), release: () => undefined }), end: async () => undefined };
    const sessionDb = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: single as never }) });
    return {
      kind: 'postgres',
      db: sessionDb,
      query: async <R>(text: string, params: readonly unknown[] = []) => (await client.query(text, params as unknown[])).rows as R[],
      exec: async (text) => {
        await client.query(text);
      },
      copyCsv: async (table, columns, source) => {
        const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT csv)`));
        await pipeline(Readable.from(source), stream);
        return Number(stream.rowCount ?? 0);
      },
      copyBinary: async (table, columns, tuples) => {
        const stream = client.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT binary)`));
        await pipeline(Readable.from(framedBinary(tuples)), stream);
        return Number(stream.rowCount ?? 0);
      },
    };
  };

  const withClient = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    let broken = false;
    // A checked-out client has no pool listener: dropped by the server while idle here (a job's lock
    // session, held while the job works on other connections), it would emit 'error' to nobody and
    // Node would exit, taking the scheduler down. Its next query fails instead, and it is discarded.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      return await fn(client);
    } catch (error) {
      // A caller that cannot trust the connection any more (a lock session that stopped answering)
      // says so on its error: the connection is closed, not handed to the next user.
      broken ||= isConnectionError(error) || (error as { discardConnection?: boolean } | null)?.discardConnection === true;
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  };

  return {
    kind: 'postgres',
    db,
    description,
    query: async <R>(text: string, params: readonly unknown[] = []) => (await pool.query(text, params as unknown[])).rows as R[],
    withSession: (fn) => withClient((client) => fn(sessionFor(client))),
    transaction: (fn) =>
      withClient(async (client) => {
        await client.query('BEGIN');
        try {
          const result = await fn(sessionFor(client));
          await client.query('COMMIT');
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
    close: async () => {
      // Kysely ends the pool only if it used it; raw queries and sessions use the pool directly.
      await db.destroy();
      if (!pool.ended) await pool.end();
    },
  };
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string })?.code;
  return code === 'ECONNRESET' || code === '57P01' || code === 'EPIPE';
}

async function openPglite(options: OpenOptions): Promise<Database> {
  const dataDir = options.memory ? undefined : join(options.home ?? defaultHome(), 'db');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // PGlite is single-process: a second process on the same files corrupts them silently. Hold an
  // exclusive inter-process lock on the directory from before PGlite starts until close().
  const unlock = dataDir
    ? await lockDataDir(dataDir, { waitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS, staleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS })
    : async () => undefined;
  const parsers = {
    [OID.INT8]: (v: string) => Number(v),
    [OID.NUMERIC]: (v: string) => Number(v),
    [OID.DATE]: (v: string) => v,
  };
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(dataDir ? { dataDir } : {}),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      parsers,
    });
  } catch (error) {
    await unlock();
    throw error;
  }
  const db = new Kysely<Schema>({ dialect: new PGliteDialect(pglite) });

  const sessionFor = (tx: PGliteTransaction | PGlite): Session => ({
    kind: 'pglite',
    db: new Kysely<Schema>({ dialect: new PGliteDialect(tx as PGlite) }),
    query: async <R>(text: string, params: readonly unknown[] = []) => (await tx.query<R>(text, [...params])).rows,
    exec: async (text) => {
      await tx.exec(text);
    },
    copyCsv: (table, columns, source) => copyViaBlobs(tx, `COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT csv)`, source, [], []),
    copyBinary: (table, columns, tuples) =>
      copyViaBlobs(tx, `COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT binary)`, tuples, [COPY_BINARY_HEADER], [COPY_BINARY_TRAILER]),
  });

  // PGlite is one session: a "session" is the instance itself, serialised by PGlite's own queue.
  return {
    kind: 'pglite',
    db,
    description: dataDir ? `embedded PGlite at ${dataDir}` : 'embedded PGlite (in memory)',
    query: async <R>(text: string, params: readonly unknown[] = []) => (await pglite.query<R>(text, [...params])).rows,
    withSession: (fn) => fn(sessionFor(pglite)),
    transaction: (fn) => pglite.transaction((tx) => fn(sessionFor(tx))),
    dumpDataDir: async () => (await pglite.dumpDataDir('none')) as Blob,
    close: async () => {
      // Kysely closes its driver only if it was used; PGlite must be closed in any case or its
      // file system keeps the process alive. The directory lock goes last, once the files are at rest.
      try {
        await db.destroy();
        if (!pglite.closed) await pglite.close();
      } finally {
        await unlock();
      }
    },
  };
}

/** A binary COPY input: the header, the tuples, the trailer. */
async function* framedBinary(tuples: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield COPY_BINARY_HEADER;
  for await (const chunk of tuples) yield chunk;
  yield COPY_BINARY_TRAILER;
}

/**
 * PGlite reads COPY input from an in-memory blob: feed it in slices of about 8 MB, one COPY statement
 * each, so memory stays bounded. Callers send whole records per chunk, so any chunk boundary is a safe
 * place to cut; `head` and `tail` frame every slice (binary COPY's header and trailer).
 */
async function copyViaBlobs(tx: PGliteTransaction | PGlite, statement: string, source: AsyncIterable<string | Buffer>, head: Buffer[], tail: Buffer[]): Promise<number> {
  let copied = 0;
  let buffered: (string | Buffer)[] = [];
  let size = 0;
  const flush = async () => {
    if (size === 0) return;
    const blob = new Blob([...head, ...buffered, ...tail] as unknown as ConstructorParameters<typeof Blob>[0]);
    buffered = [];
    size = 0;
    const result = await tx.query(statement, [], { blob });
    copied += result.affectedRows ?? 0;
  };
  for await (const chunk of source) {
    buffered.push(chunk);
    size += chunk.length;
    if (size >= 8 * 1024 * 1024) await flush();
  }
  await flush();
  return copied;
}

export { sql };
