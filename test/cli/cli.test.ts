import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/run-cli.js';
import { backends } from '../support/backends.js';
import { openDatabase } from '../../db/connection.js';

function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'repwatch-home-'));
}

describe('repwatch CLI', () => {
  it('prints help for every verb and exits 0', async () => {
    const result = await runCliCaptured(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/migrate/);
    expect(result.stdout).toMatch(/demo/);
  });

  it('exits 2 on an unknown verb or option', async () => {
    expect((await runCliCaptured(['no-such-verb'])).code).toBe(2);
    expect((await runCliCaptured(['migrate', '--no-such-option'])).code).toBe(2);
  });

  it('exits 2 with the bad key named when the config is invalid', async () => {
    const home = tempHome();
    const path = join(home, 'bad.yaml');
    writeFileSync(path, 'thresholds:\n  complaintRateMax: lots\nsnds:\n  feedz: []\n');
    const result = await runCliCaptured(['--config', path, 'migrate'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/thresholds\.complaintRateMax/);
    expect(result.stderr).toMatch(/unknown key snds\.feedz/);
  });

  it('exits 2 naming the key when a schedule restricts both day fields, before opening the database', async () => {
    const home = tempHome();
    const path = join(home, 'days.yaml');
    writeFileSync(path, 'schedule:\n  snds: "15 6 1 * 1"\n');
    for (const verb of ['status', 'run']) {
      const result = await runCliCaptured(['--config', path, verb], { env: { REPWATCH_HOME: home } });
      expect(result.code, verb).toBe(2);
      expect(result.stderr).toMatch(/schedule\.snds: "15 6 1 \* 1": it restricts both the day of the month and the day of the week/);
      expect(result.stderr).not.toMatch(/ at /);
    }
    expect(readdirSync(home)).toEqual(['days.yaml']);
  });

  const postgres = backends().find((b) => b.name === 'postgres')!;
  it.skipIf(!postgres.available)(`the demo runs on the embedded database even when DATABASE_URL names a server, which it leaves untouched${postgres.available ? '' : ` [SKIPPED: ${postgres.skipReason}]`}`, async () => {
    const home = tempHome();
    const server = await postgres.create({ migrated: false });
    try {
      const result = await runCliCaptured(['demo'], { env: { REPWATCH_HOME: home, DATABASE_URL: server.url! } });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^repwatch demo on embedded PGlite at .*repwatch-home-/);
      expect(result.stderr).toMatch(/the demo runs on the embedded database only/);
      const [schema] = await server.database.query<{ found: string | null }>(`select to_regnamespace('repwatch')::text as found`);
      expect(schema!.found).toBeNull();
      // The sample's two start_delisting IPs share a /31: the report fills in one Outlook.com request
      // for it, under the first, and the second points to it (not a second, different request).
      const markdown = readFileSync(join(home, 'reports', readdirSync(join(home, 'reports')).find((f) => f.endsWith('.md'))!), 'utf8').replace(/\\([()])/g, '$1');
      expect(markdown.match(/Outgoing IP addresses or ranges: 203\.0\.113\.12\/31/g)).toHaveLength(1);
      expect(markdown).toMatch(/\*\*203\.0\.113\.13\*\*[^\n]*\n[^\n]*\n  - The Outlook\.com request shown for 203\.0\.113\.12 covers this IP too \(203\.0\.113\.12\/31\): send that one request once\./);

      // A new home owes no job a tick from before it existed: status after the demo is OK, not stale.
      const status = await runCliCaptured(['status', '--format', 'json'], { env: { REPWATCH_HOME: home } });
      expect(status.code, status.stdout).toBe(0);
      expect(JSON.parse(status.stdout).jobs.map((j: { state: string }) => j.state)).toEqual(['not run yet', 'not run yet']);
      // Again: every load finds its data stored, and the jobs step says why nothing ran (or shows the skip).
      const again = await runCliCaptured(['demo'], { env: { REPWATCH_HOME: home } });
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/two runs at once: (nothing due: an earlier run of the demo already did the current period|jmrp:demo-sample \S+ succeeded .*; jmrp:demo-sample \S+ skipped)/);
    } finally {
      await server.drop();
    }
  }, 120_000);

  it('the demo does not read ./repwatch.yaml (the copied example names secrets it does not need), and says so', async () => {
    const home = tempHome();
    const cwd = mkdtempSync(join(tmpdir(), 'repwatch-cwd-'));
    copyFileSync(new URL('../../repwatch.example.yaml', import.meta.url), join(cwd, 'repwatch.yaml'));
    // Any other verb reads it, and stops at its first unset ${ENV} secret.
    const other = await runCliCaptured(['migrate'], { env: { REPWATCH_HOME: home }, cwd });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/environment variable SNDS_MAIN_DATA_URL is not set/);

    const demo = await runCliCaptured(['demo'], { env: { REPWATCH_HOME: home }, cwd });
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stderr).toMatch(/the demo does not read \.\/repwatch\.yaml \(give --config to use it\)/);
    expect(demo.stdout).toMatch(/demo finished in/);
    // Named explicitly, it is read (and here fails the same way).
    const named = await runCliCaptured(['--config', 'repwatch.yaml', 'demo'], { env: { REPWATCH_HOME: home }, cwd });
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/SNDS_MAIN_DATA_URL is not set/);
  }, 120_000);

  it('migrates the embedded database under REPWATCH_HOME', async () => {
    const home = tempHome();
    const result = await runCliCaptured(['migrate'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/schema at migration \d+ on embedded PGlite at .*repwatch-home-/);
    expect(result.stdout).not.toMatch(/warning/);

    // The role missing (a user without CREATEROLE) is said by migrate, not left in a notice no one reads.
    const db = await openDatabase({ home });
    await db.withSession((s) => s.exec('drop owned by repwatch_bi; drop role repwatch_bi;')).finally(() => db.close());
    const again = await runCliCaptured(['migrate'], { env: { REPWATCH_HOME: home } });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/\nwarning: role repwatch_bi does not exist \(this database user may not create roles\), so BI tools have no read-only role: an administrator runs `create role repwatch_bi nologin;`, then `repwatch migrate` grants it/);
  });
});

const postgres = backends()[0]!;
describe.skipIf(!postgres.available)(`repwatch CLI against PostgreSQL${postgres.available ? '' : ` [SKIPPED: ${postgres.skipReason}]`}`, () => {
  it('refuses a database whose schema is newer than the code, exit 1, saying so', async () => {
    const handle = await postgres.create();
    try {
      await handle.database.query(`insert into repwatch.schema_migration (id, name) values (9999, 'future')`);
      const result = await runCliCaptured(['migrate'], { env: { DATABASE_URL: handle.url! } });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/schema is at migration 9999 \(future\), newer than this repwatch/);
    } finally {
      await handle.drop();
    }
  });
});
