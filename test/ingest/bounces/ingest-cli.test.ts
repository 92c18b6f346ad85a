import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../../lib/clock.js';
import { buildBounce } from '../../../demo/generate-bounces.js';
import { runCliCaptured } from '../../support/run-cli.js';

const clock = fixedClock('2026-11-25T06:00:00Z');

function maildirWith(prefix: string, n: number): string {
  const dir = mkdtempSync(join(tmpdir(), `repwatch-bounces-${prefix}-`));
  for (const sub of ['new', 'cur', 'tmp']) mkdirSync(join(dir, sub));
  for (let i = 0; i < n; i++) {
    const text = buildBounce({ code: 'S3140', ip: `203.0.113.${20 + i}`, recipient: 'x@hotmail.com', senderDomain: 'shop.example', at: new Date('2026-11-23T10:00:00Z'), id: `${prefix}-${i}` });
    writeFileSync(join(dir, 'new', `1790000000.${prefix}${i}.host`), text);
  }
  return dir;
}

describe('repwatch ingest bounces without a source option', () => {
  it('drains every configured bounces.mailboxes entry, like ingest jmrp; --mailbox picks one; none configured is a usage error', async () => {
    const home = mkdtempSync(join(tmpdir(), 'repwatch-bounces-cli-'));
    const first = maildirWith('a', 2);
    const second = maildirWith('b', 3);
    const config = join(home, 'repwatch.yaml');
    writeFileSync(config, JSON.stringify({ bounces: { mailboxes: [{ name: 'mta-a', maildir: first }, { name: 'mta-b', maildir: second }] } }));
    const env = { REPWATCH_HOME: home, REPWATCH_CONFIG: config };

    const all = await runCliCaptured(['ingest', 'bounces', '--format', 'json'], { env, clock });
    expect(all.code, all.stderr).toBe(0);
    const summaries = JSON.parse(all.stdout) as { mailbox: string; stored: number; archived: number }[];
    expect(summaries.map((s) => [s.mailbox, s.stored, s.archived])).toEqual([
      ['mta-a', 2, 2],
      ['mta-b', 3, 3],
    ]);
    expect(readdirSync(join(first, 'new'))).toEqual([]);
    expect(readdirSync(join(second, 'new'))).toEqual([]);

    writeFileSync(join(second, 'new', 'late.eml'), buildBounce({ code: '5.7.606', ip: '203.0.113.99', recipient: 'y@outlook.com', senderDomain: 'shop.example', at: new Date('2026-11-24T10:00:00Z'), id: 'late' }));
    const one = await runCliCaptured(['ingest', 'bounces', '--mailbox', 'mta-b', '--format', 'json'], { env, clock });
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ mailbox: 'mta-b', stored: 1 });

    const empty = mkdtempSync(join(tmpdir(), 'repwatch-bounces-none-'));
    const none = await runCliCaptured(['ingest', 'bounces'], { env: { REPWATCH_HOME: empty }, clock });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no bounce mailbox configured/);
  });
});
