import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, inject } from 'vitest';
import { openDatabase, type Database } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';

export type BackendName = 'postgres' | 'pglite';

export interface TestDatabase {
  database: Database;
  /** postgres:// URL of the test database (PostgreSQL only): for child processes such as the CLI. */
  url?: string;
  drop(): Promise<void>;
}

export interface Backend {
  name: BackendName;
  available: boolean;
  skipReason: string;
  /** A new, empty database of its own; migrated unless told otherwise. */
  create(options?: { migrated?: boolean }): Promise<TestDatabase>;
}

let snapshotBlob: Blob | undefined;

function pgliteBackend(): Backend {
  return {
    name: 'pglite',
    available: true,
    skipReason: '',
    async create({ migrated = true } = {}) {
      if (migrated) {
        snapshotBlob ??= new Blob([readFileSync(inject('pgliteSnapshot'))]);
        const database = await openDatabase({ memory: true, loadDataDir: snapshotBlob });
        return { database, drop: () => database.close() };
      }
      const database = await openDatabase({ memory: true });
      return { database, drop: () => database.close() };
    },
  };
}

function postgresBackend(): Backend {
  const serverUrl = inject('postgresUrl');
  return {
    name: 'postgres',
    available: Boolean(serverUrl),
    skipReason: inject('postgresSkipReason'),
    async create({ migrated = true } = {}) {
      const name = `repwatch_test_${process.pid}_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      const database = await openDatabase({ url: url.toString(), poolSize: 4 });
      if (migrated) await migrate(database);
      return {
        database,
        url: url.toString(),
        async drop() {
          await database.close();
          const cleanup = new pg.Client({ connectionString: serverUrl });
          await cleanup.connect();
          await cleanup.query(`drop database if exists ${name} with (force)`);
          await cleanup.end();
        },
      };
    },
  };
}

export function backends(): Backend[] {
  return [postgresBackend(), pgliteBackend()];
}

/**
 * Run a suite once per backend, like kysely's own tests. Each run gets its own migrated database for
 * the whole suite. PostgreSQL is skipped only when no server is configured, and the suite's name says so.
 */
export function describeEachBackend(title: string, body: (db: () => Database, backend: Backend) => void): void {
  for (const backend of backends()) {
    const label = backend.available ? `${title} [${backend.name}]` : `${title} [${backend.name}: SKIPPED, ${backend.skipReason}]`;
    describe.skipIf(!backend.available)(label, () => {
      let handle: TestDatabase | undefined;
      beforeAll(async () => {
        handle = await backend.create();
      });
      afterAll(async () => {
        await handle?.drop();
      });
      body(() => {
        if (!handle) throw new Error('test database not ready');
        return handle.database;
      }, backend);
    });
  }
}
