import type { Database, Session } from './connection.js';
import { migrations as knownMigrations, type Migration } from '../migrations/index.js';

/** A lock key no other program is likely to use: "repwatch" read as bytes, folded into an int4 pair. */
const MIGRATION_LOCK = [0x72657077, 0x6d696772] as const;

export class SchemaTooNewError extends Error {
  constructor(readonly databaseVersion: number, readonly codeVersion: number, readonly databaseMigrationName: string | null) {
    super(
      `the database schema is at migration ${databaseVersion}${databaseMigrationName ? ` (${databaseMigrationName})` : ''}, ` +
        `newer than this repwatch, which knows migrations up to ${codeVersion}. ` +
        'Another, newer repwatch has upgraded this database: run that version, or upgrade this one. Nothing was changed.',
    );
    this.name = 'SchemaTooNewError';
  }
}

export interface MigrationResult {
  /** Migrations applied by this call, in order. */
  applied: { id: number; name: string }[];
  /** The schema's version after the call. */
  version: number;
  /** What is wrong but did not stop the migration, for a person to fix (the BI role missing or
   * without its grants). PostgreSQL's notices from the migrations reach no one, so they are checked. */
  warnings: string[];
}

const LEDGER_DDL = `
create schema if not exists repwatch;
create table if not exists repwatch.schema_migration (
  id          int primary key,
  name        text not null,
  applied_at  timestamptz not null default now()
)`;

/**
 * Bring the schema to the latest migration. Serialised across processes by an advisory lock held for
 * the whole run, each migration in its own transaction, and a database newer than the code is refused
 * before anything is touched.
 */
export async function migrate(database: Database, migrations: readonly Migration[] = knownMigrations, lockWait: LockWait = LOCK_WAIT): Promise<MigrationResult> {
  assertOrdered(migrations);
  const latest = migrations.at(-1)?.id ?? 0;
  return database.withSession(async (session) => {
    await session.query('select pg_advisory_lock($1, $2)', MIGRATION_LOCK);
    try {
      await session.exec(LEDGER_DDL);
      const done = await appliedMigrations(session);
      const newest = done.at(-1);
      if (newest && newest.id > latest) throw new SchemaTooNewError(newest.id, latest, newest.name);
      const doneIds = new Set(done.map((m) => m.id));
      const applied: { id: number; name: string }[] = [];
      for (const migration of migrations) {
        if (doneIds.has(migration.id)) continue;
        await applyOne(session, migration, lockWait);
        applied.push({ id: migration.id, name: migration.name });
      }
      const warnings = await grantToBiRole(session);
      return { applied, version: Math.max(latest, newest?.id ?? 0), warnings };
    } finally {
      await session.query('select pg_advisory_unlock($1, $2)', MIGRATION_LOCK).catch(() => undefined);
    }
  });
}

/**
 * The read-only BI role's grants, on every migrate and not only in the migrations that created the
 * views: where repwatch could not create the role (no CREATEROLE), an administrator creates it after
 * the migrations ran, and docs/bi.md tells them to run `repwatch migrate` then. Granted only when
 * something is missing, so an ordinary start writes nothing to the catalog. A role that does not exist,
 * or grants this user may not give, come back as warnings: both are said only in a `raise notice`
 * nobody reads, and BI logins then fail with "permission denied" far from the cause.
 */
const BI_ROLE_STATE = `
with role as (select exists (select 1 from pg_roles where rolname = 'repwatch_bi') as role_exists)
select role_exists,
       -- case: the privilege functions raise an error for a role that does not exist
       case when role_exists and to_regnamespace('analytics') is not null
            then not has_schema_privilege('repwatch_bi', 'analytics', 'USAGE')
                 or exists (select 1 from pg_class c where c.relnamespace = to_regnamespace('analytics') and c.relkind in ('r', 'v', 'm')
                              and not has_table_privilege('repwatch_bi', c.oid, 'SELECT'))
            else false end as grants_missing
from role`;

const BI_GRANTS = `
do $$
begin
  grant usage on schema analytics to repwatch_bi;
  grant select on all tables in schema analytics to repwatch_bi;
  alter default privileges in schema analytics grant select on tables to repwatch_bi;
exception when insufficient_privilege then
  raise notice 'repwatch: cannot grant to repwatch_bi';
end
$$`;

async function grantToBiRole(session: Session): Promise<string[]> {
  const state = async () => (await session.query<{ role_exists: boolean; grants_missing: boolean }>(BI_ROLE_STATE))[0]!;
  const before = await state();
  if (!before.role_exists) {
    return [
      'role repwatch_bi does not exist (this database user may not create roles), so BI tools have no read-only role: ' +
        'an administrator runs `create role repwatch_bi nologin;`, then `repwatch migrate` grants it (docs/bi.md)',
    ];
  }
  if (!before.grants_missing) return [];
  await session.exec(BI_GRANTS);
  if (!(await state()).grants_missing) return [];
  return [
    'role repwatch_bi cannot read every view in schema analytics, and this database user may not grant it: ' +
      'run `repwatch migrate` as the owner of the analytics views, or have an administrator grant usage on schema analytics and select on all tables in schema analytics to repwatch_bi',
  ];
}

/** How long a migration waits for each lock (a PostgreSQL interval), how often it tries, and the pause between. */
export interface LockWait {
  timeout: string;
  attempts: number;
  pauseMs: number;
}

const LOCK_WAIT: LockWait = { timeout: '5s', attempts: 6, pauseMs: 2_000 };

/**
 * One migration in its own transaction. Its DDL waits for locks that a long query holds (a BI
 * dashboard reading a view): waiting without limit would queue every later query on that table behind
 * it, dashboards and jobs alike. So each attempt waits at most lockWait.timeout, then rolls back and
 * tries again a few times before giving up with a message that says why.
 */
async function applyOne(session: Session, migration: Migration, lockWait: LockWait): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await session.query('begin');
    try {
      await session.query(`set local lock_timeout = '${lockWait.timeout}'`);
      await session.exec(migration.sql);
      await session.query('insert into repwatch.schema_migration (id, name) values ($1, $2)', [migration.id, migration.name]);
      await session.query('commit');
      return;
    } catch (error) {
      await session.query('rollback').catch(() => undefined);
      const lockTimeout = (error as { code?: string }).code === '55P03';
      if (lockTimeout && attempt < lockWait.attempts) {
        await new Promise((resolve) => setTimeout(resolve, lockWait.pauseMs));
        continue;
      }
      const why = lockTimeout
        ? `a table it changes stayed locked by another session (a long query, e.g. from a BI tool) through ${lockWait.attempts} waits of ${lockWait.timeout}; nothing was changed, run it again when that query ends`
        : (error as Error).message;
      throw new Error(`migration ${migration.id} (${migration.name}) failed: ${why}`, { cause: error });
    }
  }
}

/** The schema's version without changing anything (for `status` and the too-new check in tests). */
export async function schemaVersion(database: Database): Promise<number> {
  const exists = await database.query<{ t: string | null }>(`select to_regclass('repwatch.schema_migration')::text as t`);
  if (!exists[0]?.t) return 0;
  const rows = await database.query<{ version: number | null }>('select max(id) as version from repwatch.schema_migration');
  return rows[0]?.version ?? 0;
}

async function appliedMigrations(session: Session): Promise<{ id: number; name: string }[]> {
  return session.query<{ id: number; name: string }>('select id, name from repwatch.schema_migration order by id');
}

function assertOrdered(migrations: readonly Migration[]): void {
  migrations.forEach((migration, index) => {
    if (migration.id !== index + 1) {
      throw new Error(`migrations must be numbered 1, 2, 3… without gaps; found ${migration.id} at position ${index + 1}`);
    }
  });
}

export const latestMigration = knownMigrations.at(-1)?.id ?? 0;
