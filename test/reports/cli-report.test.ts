import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { backends, type TestDatabase } from '../support/backends.js';
import { runCliCaptured } from '../support/run-cli.js';
import { fixedClock } from '../../lib/clock.js';
import { openDatabase } from '../../db/connection.js';
import { migrate } from '../../db/migrate.js';
import { HOSTILE, insertFixture } from './fixture.js';

/** A local SMTP server that keeps every message it receives (plain text, AUTH allowed without TLS). */
async function startSmtp(): Promise<{ port: number; messages: ParsedMail[]; logins: string[]; close(): Promise<void> }> {
  const messages: ParsedMail[] = [];
  const logins: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push(`${auth.username}:${auth.password}`);
      callback(null, { user: auth.username });
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          messages.push(mail);
          callback();
        })
        .catch(callback);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, logins, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

for (const backend of backends()) {
  const label = backend.available ? `repwatch report weekly [${backend.name}]` : `repwatch report weekly [${backend.name}: SKIPPED, ${backend.skipReason}]`;
  describe.skipIf(!backend.available)(label, () => {
    const dir = mkdtempSync(join(tmpdir(), 'repwatch-report-cli-'));
    let handle: TestDatabase | undefined;
    let env: NodeJS.ProcessEnv;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    const clock = fixedClock('2026-11-25T09:00:00Z'); // a Wednesday: the last complete week is 2026-W47

    beforeAll(async () => {
      smtp = await startSmtp();
      env = { REPWATCH_HOME: join(dir, 'home') };
      if (backend.name === 'postgres') {
        handle = await backend.create();
        await insertFixture(handle.database);
        env.DATABASE_URL = handle.url;
      } else {
        const database = await openDatabase({ home: env.REPWATCH_HOME });
        await migrate(database);
        await insertFixture(database);
        await database.close();
      }
    });
    afterAll(async () => {
      await handle?.drop();
      await smtp.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('writes every format for the last complete week and prints the paths', async () => {
      const out = join(dir, 'out-all');
      const result = await runCliCaptured(['report', 'weekly', '--out', out], { env, clock });
      expect(result.stderr).not.toMatch(/repwatch: /);
      expect(result.code).toBe(0);
      const paths = result.stdout.trim().split('\n');
      expect(paths).toEqual(['html', 'md', 'csv', 'json'].map((f) => join(out, f === 'csv' ? 'repwatch-weekly-2026-W47-decisions.csv' : `repwatch-weekly-2026-W47.${f}`)));
      for (const path of paths) expect(existsSync(path)).toBe(true);
      const data = JSON.parse(readFileSync(paths[3]!, 'utf8'));
      expect(data.period.to).toBe('2026-11-22');
      expect(readFileSync(paths[0]!, 'utf8')).not.toContain(HOSTILE.campaign);
    });

    it('narrows the formats, takes --week or --as-of, and writes into reports.outDir by default', async () => {
      const config = join(dir, 'narrow.yaml');
      writeFileSync(config, `reports:\n  outDir: ${join(dir, 'configured')}\n`);
      const week = await runCliCaptured(['--config', config, 'report', 'weekly', '--week', '2026-W46', '--format', 'md,csv'], { env, clock });
      expect(week.code).toBe(0);
      expect(week.stdout.trim().split('\n')).toEqual([
        join(dir, 'configured', 'repwatch-weekly-2026-W46.md'),
        join(dir, 'configured', 'repwatch-weekly-2026-W46-decisions.csv'),
      ]);
      const asOf = await runCliCaptured(['--config', config, 'report', 'weekly', '--as-of', '2026-11-20', '--format', 'json'], { env, clock });
      expect(asOf.code).toBe(0);
      expect(asOf.stdout.trim()).toBe(join(dir, 'configured', 'repwatch-weekly-2026-11-20.json'));
      // No decisions were stored for 20 November: the report had them computed and stored first.
      const data = JSON.parse(readFileSync(asOf.stdout.trim(), 'utf8'));
      expect(data.notes.join(' ')).toMatch(/Decisions for 2026-11-20 were not stored; they were computed/);
      // The IP Status download is of 22 November, so nothing was blocked yet on the 20th.
      expect(data.headline.statusCounts).toMatchObject({ start_delisting: 0, fix_first: 0 });
      expect(data.headline.statusCounts.at_risk).toBeGreaterThanOrEqual(2);
    });

    it('refuses bad options with exit code 2', async () => {
      for (const args of [['--week', '2026-W60'], ['--as-of', '2026-02-30'], ['--format', 'pdf'], ['--week', '2026-W47', '--as-of', '2026-11-22']]) {
        const result = await runCliCaptured(['report', 'weekly', ...args], { env, clock });
        expect(result.code, args.join(' ')).toBe(2);
      }
      // After today (the clock's day, 2026-11-25): decisions for a future date would be stored and stick.
      const future = await runCliCaptured(['report', 'weekly', '--as-of', '2026-11-26'], { env, clock });
      expect(future.code).toBe(2);
      expect(future.stderr).toMatch(/--as-of 2026-11-26 is after today \(2026-11-25, UTC\)/);
      const unfinished = await runCliCaptured(['report', 'weekly', '--week', '2026-W48'], { env, clock });
      expect(unfinished.code).toBe(2);
      expect(unfinished.stderr).toMatch(/--week 2026-W48 \(ending 2026-11-29\) is after today/);
    });

    it('sends the report by e-mail: HTML part, plain-text part, decisions attached; the SMTP password never shows', async () => {
      const config = join(dir, 'email.yaml');
      writeFileSync(
        config,
        `reports:\n  outDir: ${join(dir, 'mailed')}\n  email:\n    smtpUrl: smtp://reports:s3cret-Passw0rd@127.0.0.1:${smtp.port}\n    from: repwatch@example.test\n    to: [analysts@example.test, ops@example.test]\n`,
      );
      const result = await runCliCaptured(['--config', config, 'report', 'weekly'], { env, clock });
      expect(result.stderr).not.toContain('s3cret-Passw0rd');
      expect(result.code).toBe(0);
      expect(smtp.logins).toEqual(['reports:s3cret-Passw0rd']);
      expect(smtp.messages).toHaveLength(1);
      const mail = smtp.messages[0]!;
      expect(mail.subject).toBe('repwatch 2026-W47: 1 to delist, 1 to fix first, 1 at risk');
      expect(mail.from?.text).toBe('repwatch@example.test');
      expect(JSON.stringify(mail.to)).toContain('ops@example.test');
      expect(mail.html).toContain('<h1>repwatch weekly report — 2026-W47</h1>');
      expect(mail.html).not.toContain(HOSTILE.subject);
      expect(mail.text).toContain('## Decisions');
      expect(mail.text).toContain('203.0.113.10');
      // Plain text, not escaped Markdown: no backslashes before punctuation, no entities; hostile text as written.
      expect(mail.text).toContain('route outlook_form');
      expect(mail.text).not.toMatch(/\\[_()#.\[\]]|&lt;|&gt;|&amp;/);
      expect(mail.text).toContain(HOSTILE.campaign);
      expect(mail.attachments.map((a) => [a.filename, a.contentType])).toEqual([
        ['repwatch-weekly-2026-W47.html', 'text/html'],
        ['repwatch-decisions-2026-11-22.csv', 'text/csv'],
      ]);
      expect(mail.attachments[0]!.content.toString('utf8')).toBe(mail.html);
      expect(mail.attachments[1]!.content.toString('utf8')).toMatch(/^as_of,ip,status/);
    });

    it('says when sending fails (exit 1) after writing the files, without the password', async () => {
      const config = join(dir, 'email-down.yaml');
      writeFileSync(
        config,
        `reports:\n  outDir: ${join(dir, 'down')}\n  email:\n    smtpUrl: smtp://reports:s3cret-Passw0rd@127.0.0.1:1\n    from: repwatch@example.test\n    to: [analysts@example.test]\n`,
      );
      const result = await runCliCaptured(['--config', config, 'report', 'weekly', '--format', 'html'], { env, clock });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/sending it by e-mail failed/);
      expect(result.stderr).not.toContain('s3cret-Passw0rd');
      expect(existsSync(join(dir, 'down', 'repwatch-weekly-2026-W47.html'))).toBe(true);
    });
  });
}
