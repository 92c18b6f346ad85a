import { mkdir, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { openDatabase, type Database } from '../../../db/connection.js';
import { migrate } from '../../../db/migrate.js';
import { messageKey } from '../../../ingest/mailbox/message-key.js';
import { buildReport, generateReports, mboxEntry, type ReportShape } from '../../../bench/generate-reports.js';
import { backends, type TestDatabase } from '../../support/backends.js';
import { inspectCliDatabase, runCliCaptured } from '../../support/run-cli.js';

interface Summary {
  mailbox: string;
  seen: number;
  stored: number;
  duplicates: number;
  complaints: number;
  quarantined: number;
  archived: number;
  error?: string;
}

const SHAPES: ReportShape[] = ['arf', 'arf2026', 'legacy', 'malformed'];

/** A Maildir (new/, cur/, tmp/) with `count` generated reports in new/: 3 of every 4 are complaints, the 4th malformed. */
async function makeMaildir(parent: string, name: string, count: number, seed = 42): Promise<string> {
  const path = join(parent, name);
  for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(path, sub), { recursive: true });
  await fillNew(path, [...generateReports({ count, shapes: SHAPES, seed })].map((r) => r.eml), name);
  return path;
}

async function fillNew(maildir: string, emls: (string | Buffer)[], prefix: string): Promise<void> {
  await Promise.all(emls.map((eml, i) => writeFile(join(maildir, 'new', `1764300000.M${i}P1.${prefix}.example`), eml)));
}

const files = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).filter((f) => !f.startsWith('.')).sort();

/** The CLI against each backend: PostgreSQL through DATABASE_URL, PGlite through REPWATCH_HOME. */
for (const backend of backends()) {
  const label = backend.available ? backend.name : `${backend.name}: SKIPPED, ${backend.skipReason}`;
  describe.skipIf(!backend.available)(`repwatch ingest jmrp --maildir / --mailbox (CLI) [${label}]`, () => {
    let dir: string;
    let handle: TestDatabase | undefined;
    let env: NodeJS.ProcessEnv = {};

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'repwatch-jmrp-cli-'));
      if (backend.name === 'postgres') {
        handle = await backend.create({ migrated: false });
        env = { DATABASE_URL: handle.url!, REPWATCH_HOME: dir };
      } else {
        // Migrated here, where the hook's longer timeout covers PGlite's first start.
        const database = await openDatabase({ home: dir });
        await migrate(database);
        await database.close();
        env = { REPWATCH_HOME: dir };
      }
    });
    afterAll(async () => {
      await handle?.drop();
    });

    const cli = (args: string[]) => runCliCaptured(args, { env, cwd: dir });
    const json = async (args: string[]): Promise<Summary[]> => {
      const result = await cli([...args, '--format', 'json']);
      expect(result.code).toBe(0);
      return JSON.parse(result.stdout) as Summary[];
    };
    const inspect = <T>(fn: (db: Database) => Promise<T>): Promise<T> => inspectCliDatabase(handle, dir, fn);
    const counts = (mailbox: string) =>
      inspect(async (db) => {
        const [row] = await db.query<{ messages: number; complaints: number; quarantined: number }>(
          `select (select count(*)::int from repwatch.mail_message where mailbox = $1) as messages,
                  (select count(*)::int from analytics.complaint where mailbox = $1) as complaints,
                  (select count(*)::int from repwatch.mail_message where mailbox = $1 and quarantined) as quarantined`,
          [mailbox],
        );
        return row!;
      });

    it('--retry-quarantined reads the quarantined messages again and prints what came of it; with a source it is a usage error', async () => {
      const path = join(dir, 'retry.mbox');
      await writeFile(path, [...generateReports({ count: 2, shapes: ['malformed'], seed: 99 })].map((r) => mboxEntry(r.eml)).join(''));
      expect((await cli(['ingest', 'jmrp', '--mbox', path, '--name', 'retry-box'])).code).toBe(0);
      const result = await cli(['ingest', 'jmrp', '--retry-quarantined', 'retry-box', '--format', 'json']);
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ retried: 2, released: 0, stored: 0, stillQuarantined: 2, withoutBytes: 0 });
      const table = await cli(['ingest', 'jmrp', '--retry-quarantined', 'retry-box', '--format', 'table']);
      expect(table.stdout).toBe('2 quarantined message(s) read again: 0 now stored (0 complaints), 0 not a report, 2 still quarantined\n');
      const unknown = await cli(['ingest', 'jmrp', '--retry-quarantined', 'no-such-box']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/no JMRP mailbox is configured or stored under the name "no-such-box"/);
      const both = await cli(['ingest', 'jmrp', '--retry-quarantined', '--mbox', path]);
      expect(both.code).toBe(2);
      expect(both.stderr).toMatch(/--retry-quarantined reads what is stored/);
    });

    it('a missing path, a folder for --mbox, or an mbox given as --eml is a usage error (exit 2) naming the option, before anything is read', async () => {
      const missing = await cli(['ingest', 'jmrp', '--mbox', join(dir, 'nope.mbox')]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/--mbox \S*nope\.mbox: no such file or folder/);
      expect((await cli(['ingest', 'jmrp', '--eml', join(dir, 'nope.eml')])).code).toBe(2);
      expect((await cli(['ingest', 'jmrp', '--maildir', join(dir, 'nope')])).code).toBe(2);
      const folder = await cli(['ingest', 'jmrp', '--mbox', dir]);
      expect(folder.code).toBe(2);
      expect(folder.stderr).toMatch(/--mbox \S+: not a file/);
      const mbox = join(dir, 'several.eml');
      const reports = [...generateReports({ count: 3, seed: 77 })].map((r) => mboxEntry(r.eml)).join('');
      await writeFile(mbox, reports);
      const asEml = await cli(['ingest', 'jmrp', '--eml', mbox]);
      expect(asEml.code).toBe(2);
      expect(asEml.stderr).toMatch(/several\.eml: this file is an mbox .*read it with --mbox/);
    });

    it('--maildir on a folder that is not a Maildir (no new/ or cur/) is a usage error saying what to do, instead of reporting an empty mailbox', async () => {
      const folder = join(dir, 'just-emls');
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'report.eml'), buildReport({ shape: 'arf', index: 1, ip: '203.0.113.5', at: new Date('2026-10-01T12:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' }));
      const result = await cli(['ingest', 'jmrp', '--maildir', folder]);
      expect(result.code).toBe(2); // a wrong path on the command line is a usage error
      expect(result.stderr).toMatch(/just-emls is not a Maildir: it has no new\/ or cur\/ folder \(a folder of \.eml files is read with --eml\)/);
      expect(await readdir(folder)).toEqual(['report.eml']);
    });

    it('--maildir skips a folder or a symbolic link in new/ (naming it) and reads the mail beside it; the link and its target are left alone', async () => {
      const maildir = await makeMaildir(dir, 'odd-maildir', 2, 4242); // its own seed: other reports than the tests beside it
      await mkdir(join(maildir, 'new', 'stray-folder'));
      const secret = join(dir, 'not-mail.txt');
      await writeFile(secret, 'root:x:0:0:root:/root:/bin/bash\n');
      await symlink(secret, join(maildir, 'new', '9.link'));
      const result = await cli(['ingest', 'jmrp', '--maildir', maildir, '--format', 'json']);
      expect(result.code).toBe(0);
      const [summary] = JSON.parse(result.stdout) as Summary[];
      expect(summary).toMatchObject({ seen: 2, stored: 2, archived: 2 });
      expect(result.stderr).toMatch(/skipped a Maildir entry that is not a regular file/);
      expect(result.stderr).toMatch(/stray-folder/);
      expect(result.stderr).toMatch(/9\.link/);
      expect((await readdir(join(maildir, 'new'))).sort()).toEqual(['9.link', 'stray-folder']);
      const stored = await inspect((db) => db.query<{ n: number }>(`select count(*)::int as n from repwatch.mail_message where raw is not null and position('root:x:0:0' in convert_from(raw, 'LATIN1')) > 0`));
      expect(stored[0]!.n).toBe(0);
    });

    it('--maildir PATH stores the reports and moves them from new/ to the archive subfolder after the commit; a rerun counts nothing twice', async () => {
      const maildir = await makeMaildir(dir, 'fbl-maildir', 12);
      const archive = join(maildir, '.repwatch.archive', 'cur');
      const quarantine = join(maildir, '.repwatch.quarantine', 'cur');
      const originals = await Promise.all((await files(join(maildir, 'new'))).map((f) => readFile(join(maildir, 'new', f))));

      const [first, ...rest] = await json(['ingest', 'jmrp', '--maildir', maildir]);
      expect(rest).toEqual([]);
      expect(first).toMatchObject({ mailbox: `maildir:${maildir}`, seen: 12, stored: 12, duplicates: 0, complaints: 9, quarantined: 3, archived: 12 });
      expect(first!.error).toBeUndefined();
      expect(await files(join(maildir, 'new'))).toEqual([]);
      const archived = await files(archive);
      expect(archived).toHaveLength(9);
      expect(await files(quarantine)).toHaveLength(3);
      for (const f of [...archived, ...(await files(quarantine))]) expect(f).toMatch(/^1764300000\.M\d+P1\.fbl-maildir\.example:2,S$/);
      expect(await counts(`maildir:${maildir}`)).toEqual({ messages: 12, complaints: 9, quarantined: 3 });
      // Where each one was found is recorded (its path in new/).
      const locations = await inspect((db) => db.query<{ location: string }>(`select location from repwatch.mail_message where mailbox = $1 order by location`, [`maildir:${maildir}`]));
      expect(locations.map((l) => l.location)).toEqual(originals.map((_, i) => join(maildir, 'new', `1764300000.M${i}P1.fbl-maildir.example`)).sort());

      // Nothing left: the rerun reads nothing.
      const [empty] = await json(['ingest', 'jmrp', '--maildir', maildir]);
      expect(empty).toMatchObject({ seen: 0, stored: 0, duplicates: 0, complaints: 0, archived: 0 });

      // The same messages again (delivered twice, or a crash between commit and move): recognised by
      // key, counted once, and moved out of new/ again (to the folder their first copy went to).
      await fillNew(maildir, originals, 'again');
      const [again] = await json(['ingest', 'jmrp', '--maildir', maildir]);
      expect(again).toMatchObject({ seen: 12, stored: 0, duplicates: 12, complaints: 0, quarantined: 0, archived: 12 });
      expect(await counts(`maildir:${maildir}`)).toEqual({ messages: 12, complaints: 9, quarantined: 3 });
      expect(await files(join(maildir, 'new'))).toEqual([]);
      expect(await files(archive)).toHaveLength(18);
      expect(await files(quarantine)).toHaveLength(6);
    });

    it('--mailbox NAME drains only the configured Maildir mailbox of that name (config file via --config and REPWATCH_CONFIG)', async () => {
      const fbl = await makeMaildir(dir, 'configured-fbl', 8, 11);
      const other = await makeMaildir(dir, 'configured-other', 4, 7);
      const configPath = join(dir, 'maildirs.yaml');
      await writeFile(
        configPath,
        toYaml({
          jmrp: {
            recipientSalt: 'test-salt-123456',
            mailboxes: [
              { name: 'fbl', maildir: fbl },
              { name: 'other', maildir: other },
            ],
          },
        }),
      );

      const [summary, ...rest] = await json(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'fbl']);
      expect(rest).toEqual([]);
      expect(summary).toMatchObject({ mailbox: 'fbl', seen: 8, stored: 8, duplicates: 0, complaints: 6, quarantined: 2, archived: 8 });
      expect(await files(join(fbl, 'new'))).toEqual([]);
      expect(await files(join(fbl, '.repwatch.archive', 'cur'))).toHaveLength(6);
      expect(await files(join(fbl, '.repwatch.quarantine', 'cur'))).toHaveLength(2);
      // The other configured mailbox was not touched.
      expect(await files(join(other, 'new'))).toHaveLength(4);
      expect(await counts('fbl')).toEqual({ messages: 8, complaints: 6, quarantined: 2 });
      expect(await counts('other')).toEqual({ messages: 0, complaints: 0, quarantined: 0 });

      // A rerun through REPWATCH_CONFIG finds nothing new; an unknown name is a usage error naming the configured ones.
      const rerun = await runCliCaptured(['ingest', 'jmrp', '--mailbox', 'fbl', '--format', 'json'], { env: { ...env, REPWATCH_CONFIG: configPath }, cwd: dir });
      expect(rerun.code).toBe(0);
      expect(JSON.parse(rerun.stdout)).toMatchObject([{ mailbox: 'fbl', seen: 0, stored: 0 }]);
      expect(await counts('fbl')).toEqual({ messages: 8, complaints: 6, quarantined: 2 });
      const unknown = await cli(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'nope']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/no mailbox named "nope" in jmrp\.mailboxes \(configured: fbl, other\)/);

      // Both names at once drain both.
      const both = await json(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'fbl', 'other']);
      expect(both).toMatchObject([
        { mailbox: 'fbl', seen: 0 },
        { mailbox: 'other', seen: 4, stored: 4, complaints: 3, quarantined: 1, archived: 4 },
      ]);
      expect(await files(join(other, 'new'))).toEqual([]);
    });

    it('--mailbox NAME with a configured mbox mailbox reads it with its configured quoting (mboxo)', async () => {
      // The original holds a body line "From the desk of bob" and one ">>From deeper". An mboxo writer
      // quotes only the first (to ">From the desk…") and leaves ">>From deeper" as it is.
      const original = buildReport({ shape: 'arf', index: 1, ip: '203.0.113.9', at: new Date('2026-10-02T10:00:00Z'), recipient: 'r@hotmail.com', campaign: 'c', fromDomain: 'd.example' })
        .replace('Hello,', 'From the desk of bob\r\n>>From deeper\r\nHello,')
        .replace(/\r\n/g, '\n');
      expect(original).toMatch(/^From the desk of bob$/m);
      const body = original.replace(/^From /gm, '>From ');
      const mbox = join(dir, 'mboxo.mbox');
      await writeFile(mbox, `From MAILER-DAEMON Fri Oct  2 10:00:05 2026\n${body.endsWith('\n') ? body : `${body}\n`}\n`);
      const configPath = join(dir, 'mbox.yaml');
      await writeFile(
        configPath,
        toYaml({
          jmrp: {
            recipients: 'plain', // the raw bytes are kept as read, so they can be compared
            mailboxes: [
              { name: 'old-mboxo', mbox, quoting: 'mboxo' },
              { name: 'old-default', mbox },
            ],
          },
        }),
      );
      const [summary] = await json(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'old-mboxo']);
      expect(summary).toMatchObject({ mailbox: 'old-mboxo', seen: 1, stored: 1, complaints: 1, quarantined: 0, archived: 0 });
      const expected = Buffer.from(original.endsWith('\n') ? original : `${original}\n`);
      const [row] = await inspect((db) => db.query<{ raw: Uint8Array; message_key: string; delivered_at: Date | string }>(`select raw, message_key, delivered_at from repwatch.mail_message where mailbox = 'old-mboxo'`));
      expect(Buffer.from(row!.raw).toString()).toBe(expected.toString());
      expect(row!.message_key).toBe(messageKey(expected).key);
      expect(new Date(row!.delivered_at).toISOString()).toBe('2026-10-02T10:00:05.000Z');
      // The mbox file is read only.
      expect((await readFile(mbox, 'utf8')).startsWith('From MAILER-DAEMON')).toBe(true);

      // Without quoting: mboxrd, which takes one ">" off ">>From deeper" too: other bytes, another key.
      const [rd] = await json(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'old-default']);
      expect(rd).toMatchObject({ mailbox: 'old-default', seen: 1, stored: 1, duplicates: 0 });
      const [rdRow] = await inspect((db) => db.query<{ raw: Uint8Array }>(`select raw from repwatch.mail_message where mailbox = 'old-default'`));
      expect(Buffer.from(rdRow!.raw).toString()).toBe(expected.toString().replace('>>From deeper', '>From deeper'));
    });

    it('a configured mbox or Maildir whose path went missing needs a person (exit 3), saying which path to fix', async () => {
      const configPath = join(dir, 'gone.yaml');
      await writeFile(
        configPath,
        toYaml({ jmrp: { mailboxes: [{ name: 'gone-mbox', mbox: join(dir, 'gone.mbox') }, { name: 'gone-maildir', maildir: join(dir, 'gone-maildir') }] } }),
      );
      const mbox = await runCliCaptured(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'gone-mbox', '--format', 'json'], { env, cwd: dir });
      expect(mbox.code, mbox.stdout + mbox.stderr).toBe(3);
      expect(JSON.parse(mbox.stdout)[0].error).toBe(`mailbox gone-mbox: the mbox ${join(dir, 'gone.mbox')} does not exist: fix the mailbox's mbox path in the configuration, or restore the file`);
      const maildir = await runCliCaptured(['--config', configPath, 'ingest', 'jmrp', '--mailbox', 'gone-maildir', '--format', 'json'], { env, cwd: dir });
      expect(maildir.code).toBe(3);
      expect(JSON.parse(maildir.stdout)[0].error).toBe(`mailbox gone-maildir: the Maildir ${join(dir, 'gone-maildir')} does not exist: fix the mailbox's maildir path in the configuration, or restore the folder`);
    });
  });
}
