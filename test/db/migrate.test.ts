import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { backends, type Backend, type TestDatabase } from '../support/backends.js';
import { openDatabase, type Database } from '../../db/connection.js';
import { migrate, schemaVersion, SchemaTooNewError } from '../../db/migrate.js';
import { migrations } from '../../migrations/index.js';
import { configSchema } from '../../config/schema.js';
import { recompute } from '../../transform/recompute.js';
import { DECISION_RULES_VERSION } from '../../transform/decisions.js';

const latest = migrations.at(-1)!.id;

/** The views BI dashboards depend on, with their exact columns and types. */
const FIXED_VIEWS: Record<string, [string, string][]> = {
  ip_day: [
    ['ip', 'inet'], ['day', 'date'], ['rcpt_commands', 'bigint'], ['data_commands', 'bigint'], ['message_recipients', 'bigint'],
    ['filter_result', 'text'], ['snds_complaint_band', 'text'], ['trap_hits', 'integer'], ['complaints', 'integer'],
    ['complaint_rate', 'numeric'], ['blocked', 'boolean'],
  ],
  complaint: [
    ['complained_at', 'timestamp with time zone'], ['day', 'date'], ['source_ip', 'inet'], ['source_ip_origin', 'text'],
    ['feedback_type', 'text'], ['user_agent', 'text'], ['incidents', 'integer'], ['report_format', 'text'],
    ['reported_domain', 'text'], ['original_from_domain', 'text'], ['original_message_id', 'text'], ['campaign', 'text'], ['mailbox', 'text'],
  ],
  ip_status: [['first_ip', 'inet'], ['last_ip', 'inet'], ['blocked', 'boolean'], ['details', 'text'], ['fetched_at', 'timestamp with time zone']],
  ip_flag: [
    ['as_of', 'date'], ['ip', 'inet'], ['status', 'text'], ['reasons', 'ARRAY'], ['recipients_7d', 'bigint'], ['complaints_7d', 'integer'],
    ['complaint_rate_7d', 'numeric'], ['trap_hits_7d', 'integer'], ['blocked', 'boolean'], ['route', 'text'],
  ],
  decision_coverage: [['as_of', 'date'], ['snds_through', 'date'], ['complete', 'boolean']],
  pipeline_run: [
    ['job', 'text'], ['period', 'text'], ['status', 'text'], ['started_at', 'timestamp with time zone'],
    ['finished_at', 'timestamp with time zone'], ['rows_in', 'integer'], ['rows_loaded', 'integer'], ['rows_rejected', 'integer'], ['detail', 'text'],
  ],
};

for (const backend of backends()) {
  const label = backend.available ? backend.name : `${backend.name}: SKIPPED, ${backend.skipReason}`;
  describe.skipIf(!backend.available)(`migrations [${label}]`, () => {
    it('apply in order on an empty database, then run again three times as a no-op', async () => {
      const { database, drop } = await backend.create({ migrated: false });
      try {
        expect(await schemaVersion(database)).toBe(0);
        const first = await migrate(database);
        expect(first.applied.map((m) => m.id)).toEqual(migrations.map((m) => m.id));
        for (let i = 0; i < 3; i++) {
          const again = await migrate(database);
          expect(again.applied).toEqual([]);
          expect(again.version).toBe(latest);
        }
        expect(await schemaVersion(database)).toBe(latest);
        // The SQL itself is re-runnable too: applying every migration's text again changes nothing.
        for (const migration of migrations) await database.withSession((s) => s.exec(migration.sql));
        const count = await database.query<{ n: number }>('select count(*) as n from repwatch.schema_migration');
        expect(count[0]!.n).toBe(migrations.length);
      } finally {
        await drop();
      }
    });

    it('refuses a database whose schema is newer than the code, and changes nothing', async () => {
      const { database, drop } = await backend.create();
      try {
        await database.query(`insert into repwatch.schema_migration (id, name) values ($1, 'from-the-future')`, [latest + 1]);
        const error = await migrate(database).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SchemaTooNewError);
        expect((error as Error).message).toMatch(new RegExp(`migration ${latest + 1} \\(from-the-future\\), newer than this repwatch`));
        expect(await schemaVersion(database)).toBe(latest + 1);
      } finally {
        await drop();
      }
    });

    it('rolls back a failing migration and records nothing for it', async () => {
      const { database, drop } = await backend.create();
      try {
        const broken = [...migrations, { id: latest + 1, name: 'broken', sql: 'create table repwatch.half_done (id int); select * from no_such_table;' }];
        await expect(migrate(database, broken)).rejects.toThrow(/migration \d+ \(broken\) failed/);
        expect(await schemaVersion(database)).toBe(latest);
        const table = await database.query<{ t: string | null }>(`select to_regclass('repwatch.half_done')::text as t`);
        expect(table[0]!.t).toBeNull();
      } finally {
        await drop();
      }
    });

    it('upgrading past 0015 notes the dates of decisions made before rules versions existed, and the next recompute decides them again', async () => {
      const { database, drop } = await backend.create({ migrated: false });
      try {
        await migrate(database, migrations.filter((m) => m.id <= 14));
        // A decision stored before migration 0014 (no rules version), and one stored under the current rules.
        await database.query(
          `insert into repwatch.ip_flag (as_of, ip, status, blocked, rules_version) values
             ('2026-10-05', '203.0.113.7', 'start_delisting', true, null),
             ('2026-10-06', '203.0.113.7', 'fix_first', true, $1)`,
          [DECISION_RULES_VERSION],
        );
        await migrate(database);
        const pending = await database.query<{ day: string }>('select day from repwatch.recompute_pending order by day');
        expect(pending.map((r) => r.day)).toEqual(['2026-10-05']);

        // analytics.decision_basis shows what each date was decided with: before the recompute, 10-05 under no version.
        expect(await database.query('select as_of, window_days, complaint_rate_warn, complaint_rate_max, rules_version, ips from analytics.decision_basis order by as_of')).toEqual([
          { as_of: '2026-10-05', window_days: 7, complaint_rate_warn: null, complaint_rate_max: null, rules_version: null, ips: 1 },
          { as_of: '2026-10-06', window_days: 7, complaint_rate_warn: null, complaint_rate_max: null, rules_version: DECISION_RULES_VERSION, ips: 1 },
        ]);
        await recompute(database, configSchema.parse({}), { days: [] });
        const old = await database.query<{ n: number }>('select count(*) as n from repwatch.ip_flag where rules_version is distinct from $1', [DECISION_RULES_VERSION]);
        expect(old[0]!.n).toBe(0);
        expect(await database.query('select day from repwatch.recompute_pending')).toEqual([]);
        // Applying 0015's text again notes nothing now.
        await database.withSession((s) => s.exec(migrations.find((m) => m.id === 15)!.sql));
        expect(await database.query('select day from repwatch.recompute_pending')).toEqual([]);
      } finally {
        await drop();
      }
    });

    it('upgrading past 0017 rewrites stored rates as numeric division, leaving when each decision was computed', async () => {
      const { database, drop } = await backend.create({ migrated: false });
      try {
        await migrate(database, migrations.filter((m) => m.id <= 16));
        // As JavaScript wrote 7 / 3,000 before 0017.
        await database.query(
          `insert into repwatch.ip_flag (as_of, ip, status, blocked, recipients_7d, complaints_7d, complaint_rate_7d, computed_at, rules_version) values
             ('2026-10-05', '203.0.113.7', 'at_risk', false, 3000, 7, 0.0023333333333333335, '2026-10-06T00:00:00Z', $1),
             ('2026-10-05', '203.0.113.8', 'ok', false, 0, 0, null, '2026-10-06T00:00:00Z', $1)`,
          [DECISION_RULES_VERSION],
        );
        await migrate(database);
        const rows = await database.query<{ rate: string | null; computed_at: Date }>(
          `select complaint_rate_7d::text as rate, computed_at from repwatch.ip_flag order by ip`,
        );
        expect(rows.map((r) => r.rate)).toEqual([(await database.query<{ v: string }>(`select (7::numeric / 3000)::text as v`))[0]!.v, null]);
        expect(rows.map((r) => r.computed_at.toISOString())).toEqual(['2026-10-06T00:00:00.000Z', '2026-10-06T00:00:00.000Z']);
      } finally {
        await drop();
      }
    });

    it('kept raw bytes (SNDS downloads, mail) are lz4-compressed on a server that has lz4, and left to the default on PGlite', async () => {
      const { database, drop } = await backend.create();
      try {
        const rows = await database.query<{ attname: string; compression: string }>(
          `select attname, attcompression::text as compression from pg_attribute
           where (attrelid, attname) in (('repwatch.raw_download_chunk'::regclass, 'data'), ('repwatch.mail_message'::regclass, 'raw'))
           order by attname`,
        );
        const lz4 = backend.name === 'postgres' ? (await database.query<{ ok: boolean }>(`select exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) as ok`))[0]!.ok : false;
        // PGlite is built without lz4: the migrations must still apply there, with the default kept.
        expect(rows.map((r) => [r.attname, r.compression])).toEqual([
          ['data', lz4 ? 'l' : ''],
          ['raw', lz4 ? 'l' : ''],
        ]);
        if (backend.name === 'postgres') expect(lz4, 'the PostgreSQL this suite runs against has lz4 (Debian builds do)').toBe(true);
      } finally {
        await drop();
      }
    });

    it('builds the analytics views with their fixed names, columns and types', async () => {
      const { database, drop } = await backend.create();
      try {
        for (const [view, columns] of Object.entries(FIXED_VIEWS)) {
          const rows = await database.query<{ column_name: string; data_type: string }>(
            `select column_name, data_type from information_schema.columns
             where table_schema = 'analytics' and table_name = $1 order by ordinal_position`,
            [view],
          );
          expect(rows.map((r) => [r.column_name, r.data_type]), `analytics.${view}`).toEqual(columns);
        }
      } finally {
        await drop();
      }
    });

    it('returns counts as numbers and dates as YYYY-MM-DD', async () => {
      const { database, drop } = await backend.create();
      try {
        await database.db
          .insertInto('repwatch.pipeline_run')
          .values({ job: 'test', period: '2026-11-01', status: 'succeeded', finished_at: new Date(), rows_in: 1, rows_loaded: 1, rows_rejected: 0, detail: null, instance: null })
          .execute();
        const rows = await database.query<{ n: unknown; big: unknown; rate: unknown; d: unknown }>(
          `select count(*) as n, 9007199254740::bigint as big, 0.0015::numeric as rate, date '2026-03-08' as d from repwatch.pipeline_run`,
        );
        expect(rows[0]).toEqual({ n: 1, big: 9007199254740, rate: 0.0015, d: '2026-03-08' });
        const viaKysely = await database.db.selectFrom('analytics.pipeline_run').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
        expect(viaKysely.n).toBe(1);
      } finally {
        await drop();
      }
    });
  });
}

/**
 * The database as a user who may run repwatch's statements on it but owns nothing in `analytics`, so
 * may not grant on it (a managed database's application user). PostgreSQL: a login role of its own
 * (roles belong to the server: named per test and dropped after); PGlite: one session, so `set role`.
 */
async function asUserWhoCannotGrant(backend: Backend, handle: TestDatabase): Promise<{ database: Database; close(): Promise<void>; dropRole(): Promise<void> }> {
  const role = `repwatch_test_nogrant_${process.pid}_${randomBytes(4).toString('hex')}`;
  const databaseName = backend.name === 'postgres' ? new URL(handle.url!).pathname.slice(1) : 'postgres';
  await handle.database.withSession((s) =>
    s.exec(`create role ${role} ${backend.name === 'postgres' ? 'login' : 'nologin'};
      grant create on database ${databaseName} to ${role};
      grant usage, create on schema repwatch to ${role};
      grant select, insert on repwatch.schema_migration to ${role};`),
  );
  if (backend.name === 'pglite') {
    await handle.database.query(`set role ${role}`);
    return { database: handle.database, close: async () => undefined, dropRole: async () => undefined };
  }
  const url = new URL(handle.url!);
  url.username = role;
  url.password = '';
  const database = await openDatabase({ url: url.toString(), poolSize: 1 });
  return {
    database,
    close: () => database.close(),
    async dropRole() {
      const admin = new pg.Client({ connectionString: inject('postgresUrl') });
      await admin.connect();
      await admin.query(`drop role if exists ${role}`);
      await admin.end();
    },
  };
}

describe('the BI role\'s state after a migrate', () => {
  for (const backend of backends()) {
    it.skipIf(!backend.available)(`is a warning when its grants are missing and this user may not give them [${backend.name}]`, async () => {
      const handle = await backend.create();
      let user: Awaited<ReturnType<typeof asUserWhoCannotGrant>> | undefined;
      try {
        expect((await migrate(handle.database)).warnings).toEqual([]);
        await handle.database.query('revoke select on all tables in schema analytics from repwatch_bi');
        user = await asUserWhoCannotGrant(backend, handle);
        const result = await migrate(user.database);
        expect(result.applied).toEqual([]);
        expect(result.warnings).toEqual([
          'role repwatch_bi cannot read every view in schema analytics, and this database user may not grant it: run `repwatch migrate` as the owner of the analytics views, or have an administrator grant usage on schema analytics and select on all tables in schema analytics to repwatch_bi',
        ]);
      } finally {
        await user?.close();
        await handle.drop();
        await user?.dropRole();
      }
    });
  }

  // Dropping the role is possible only where the server is the test's own: on a shared PostgreSQL
  // server every other test database's repwatch_bi is the same role.
  it('is a warning naming what to run when the role does not exist (no CREATEROLE) [pglite]', async () => {
    const pglite = backends().find((b) => b.name === 'pglite')!;
    const { database, drop } = await pglite.create();
    try {
      await database.withSession((s) => s.exec('drop owned by repwatch_bi; drop role repwatch_bi;'));
      expect((await migrate(database)).warnings).toEqual([
        'role repwatch_bi does not exist (this database user may not create roles), so BI tools have no read-only role: an administrator runs `create role repwatch_bi nologin;`, then `repwatch migrate` grants it (docs/bi.md)',
      ]);
    } finally {
      await drop();
    }
  });
});

describe.skipIf(!backends()[0]!.available)('the BI role\'s grants [postgres]', () => {
  it('are given again by any migrate when missing (a role created, or grants revoked, after the migrations ran)', async () => {
    const postgres = backends()[0]!;
    const { database, drop } = await postgres.create();
    try {
      await database.query(`do $$ begin if not exists (select 1 from pg_roles where rolname = 'repwatch_bi') then create role repwatch_bi nologin; end if; end $$`);
      await database.query('revoke select on all tables in schema analytics from repwatch_bi');
      await database.query('revoke usage on schema analytics from repwatch_bi');
      const canRead = async () =>
        (await database.query<{ ok: boolean }>(`select has_schema_privilege('repwatch_bi', 'analytics', 'USAGE') and has_table_privilege('repwatch_bi', 'analytics.ip_flag', 'SELECT') as ok`))[0]!.ok;
      expect(await canRead()).toBe(false);
      expect((await migrate(database)).applied).toEqual([]);
      expect(await canRead()).toBe(true);
      expect(
        (await database.query<{ ok: boolean }>(`select has_table_privilege('repwatch_bi', 'repwatch.mail_message', 'SELECT') as ok`))[0]!.ok,
        'the role reads the analytics schema only',
      ).toBe(false);
    } finally {
      await drop();
    }
  });
});

describe.skipIf(!backends()[0]!.available)('a migration meeting a long query [postgres]', () => {
  it('waits a bounded time for its locks, retries, then fails saying why and changing nothing; it applies once the query ends', async () => {
    const postgres = backends()[0]!;
    const { database, drop } = await postgres.create();
    try {
      const next = { id: latest + 1, name: 'add-a-column', sql: 'alter table repwatch.ip_flag add column if not exists note text;' };
      const quick = { timeout: '200ms', attempts: 2, pauseMs: 50 };
      let holding!: () => void;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (holding = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      // A dashboard's query, in a transaction that keeps its lock on the table.
      const reader = database.transaction(async (s) => {
        await s.query('select count(*) from analytics.ip_flag');
        holding();
        await released;
      });
      await held;
      await expect(migrate(database, [...migrations, next], quick)).rejects.toThrow(
        /migration \d+ \(add-a-column\) failed: a table it changes stayed locked by another session .* through 2 waits of 200ms; nothing was changed/,
      );
      expect(await schemaVersion(database)).toBe(latest);
      release();
      await reader;
      expect((await migrate(database, [...migrations, next], quick)).applied).toEqual([{ id: latest + 1, name: 'add-a-column' }]);
    } finally {
      await drop();
    }
  });
});

describe.skipIf(!backends()[0]!.available)('migrations under concurrency [postgres]', () => {
  it('two processes migrating at once: one applies, the other waits and finds nothing to do', async () => {
    const postgres = backends()[0]!;
    const first = await postgres.create({ migrated: false });
    const { openDatabase } = await import('../../db/connection.js');
    const second = await openDatabase({ url: first.url! });
    try {
      const [a, b] = await Promise.all([migrate(first.database), migrate(second)]);
      expect(a.applied.length + b.applied.length).toBe(migrations.length);
      expect([a.applied.length, b.applied.length]).toContain(0);
    } finally {
      await second.close();
      await first.drop();
    }
  });
});
