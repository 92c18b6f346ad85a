import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError, ExitCode } from '../../cli/exit-codes.js';
import { EmbeddedDatabaseBusyError, openDatabase } from '../../db/connection.js';

/**
 * The embedded database is single-process: real child processes open one REPWATCH_HOME and must take
 * turns (wait, fail clearly after lockWaitMs, take over the lock of a process killed with SIGKILL).
 */

const ROOT = resolve(import.meta.dirname, '../..');
/** A private build of db/connection.ts (under the repository so the compiled code finds node_modules). */
const BUILD = join(ROOT, 'test-artifacts', `embedded-lock-${process.pid}`);
const CHILD = join(BUILD, 'child.mjs');

/**
 * The child: `node child.mjs <home> <lockWaitMs> <mode>`. Prints `opened <ms waited>` once the database
 * is open. mode `hold` creates a table, then keeps the database open until a line arrives on stdin;
 * mode `read` reads that table and closes. A failure to open prints the message to stderr, exit 1.
 */
const CHILD_SOURCE = `
import { createInterface } from 'node:readline';
import { openDatabase } from './out/db/connection.js';
const [home, lockWaitMs, mode] = process.argv.slice(2);
const started = Date.now();
let database;
try {
  database = await openDatabase({ home, lockWaitMs: Number(lockWaitMs) });
} catch (error) {
  process.stderr.write(error.name + ': ' + error.message + '\\n');
  process.exit(1);
}
process.stdout.write('opened ' + (Date.now() - started) + '\\n');
if (mode === 'hold') {
  await database.withSession((session) => session.exec('CREATE TABLE IF NOT EXISTS marker (pid int)'));
  await database.query('INSERT INTO marker VALUES ($1)', [process.pid]);
  process.stdout.write('ready\\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  await database.close();
  process.stdout.write('closed\\n');
} else {
  const rows = await database.query('SELECT pid FROM marker');
  process.stdout.write('rows ' + JSON.stringify(rows) + '\\n');
  await database.close();
}
`;

interface Child {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function spawnChild(home: string, lockWaitMs: number, mode: 'hold' | 'read'): Child {
  const child = spawn(process.execPath, [CHILD, home, String(lockWaitMs), mode], { cwd: BUILD, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, stdout: () => Buffer.concat(out).toString('utf8'), stderr: () => Buffer.concat(err).toString('utf8'), exited };
}

async function waitFor(what: string, probe: () => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function waitedMs(child: Child): number {
  const match = /opened (\d+)/.exec(child.stdout());
  if (!match) throw new Error(`the child did not open the database: ${child.stdout()} ${child.stderr()}`);
  return Number(match[1]);
}

const homes: string[] = [];
const children: Child[] = [];
function home(): string {
  const dir = mkdtempSync(join(tmpdir(), 'repwatch-lock-'));
  homes.push(dir);
  return dir;
}
function track(child: Child): Child {
  children.push(child);
  return child;
}
/** A process that opened the database in `dir` and holds it until told to close. */
async function startHolder(dir: string): Promise<Child> {
  const holder = track(spawnChild(dir, 10_000, 'hold'));
  await waitFor('the holder', () => holder.stdout().includes('ready') || holder.child.exitCode !== null);
  expect(holder.stderr()).toBe('');
  return holder;
}

describe('the embedded database serves one process at a time', () => {
  beforeAll(() => {
    rmSync(BUILD, { recursive: true, force: true });
    mkdirSync(BUILD, { recursive: true });
    writeFileSync(
      join(BUILD, 'tsconfig.json'),
      JSON.stringify({
        extends: '../../tsconfig.json',
        compilerOptions: { noEmit: false, outDir: 'out', rootDir: '../..', sourceMap: false },
        files: ['../../db/connection.ts'],
        include: [],
      }),
    );
    try {
      execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(BUILD, 'tsconfig.json')], { cwd: ROOT, stdio: 'pipe' });
    } catch {
      // type errors elsewhere: the emitted JavaScript is still there
    }
    if (!existsSync(join(BUILD, 'out/db/connection.js'))) throw new Error(`the build did not produce ${BUILD}/out/db/connection.js`);
    writeFileSync(CHILD, CHILD_SOURCE);
  }, 120_000);

  afterAll(() => {
    for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    for (const dir of homes) rmSync(dir, { recursive: true, force: true });
    rmSync(BUILD, { recursive: true, force: true });
  });

  it('a second process waits for the first to close, then opens the same data', async () => {
    const dir = home();
    const holder = await startHolder(dir);
    const reader = track(spawnChild(dir, 30_000, 'read'));
    // Long enough for the reader to have started PGlite, had there been no lock.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(reader.stdout()).not.toContain('opened');

    holder.child.stdin!.write('close\n');
    expect(await holder.exited).toBe(0);
    expect(await reader.exited).toBe(0);
    expect(reader.stderr()).toBe('');
    expect(waitedMs(reader)).toBeGreaterThanOrEqual(2_000);
    expect(reader.stdout()).toContain(`rows [{"pid":${holder.child.pid}}]`);
    expect(existsSync(join(dir, 'db.lock'))).toBe(false);
  }, 120_000);

  it('fails with a clear message after lockWaitMs while another process holds it', async () => {
    const dir = home();
    const holder = await startHolder(dir);
    const started = Date.now();
    const second = track(spawnChild(dir, 1_000, 'read'));
    expect(await second.exited).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(second.stdout()).toBe('');
    expect(second.stderr().trim()).toBe(
      `EmbeddedDatabaseBusyError: the embedded database at ${join(dir, 'db')} is in use by another repwatch process; ` +
        'wait for it to finish, or use PostgreSQL (DATABASE_URL) to run several at once',
    );
    // The holder is undisturbed and still releases cleanly.
    holder.child.stdin!.write('close\n');
    expect(await holder.exited).toBe(0);
    expect(holder.stdout()).toContain('closed');
    expect(existsSync(join(dir, 'db.lock'))).toBe(false);
  }, 120_000);

  it('takes over the lock of a process killed with SIGKILL once it is stale', async () => {
    const dir = home();
    const holder = await startHolder(dir);
    holder.child.kill('SIGKILL');
    await holder.exited;
    expect(existsSync(join(dir, 'db.lock'))).toBe(true);

    // Default stale threshold 20 s: the next process waits for it to pass, then opens.
    const next = track(spawnChild(dir, 30_000, 'read'));
    expect(await next.exited).toBe(0);
    expect(next.stderr()).toBe('');
    expect(waitedMs(next)).toBeLessThan(25_000);
    expect(next.stdout()).toContain(`rows [{"pid":${holder.child.pid}}]`);
    expect(existsSync(join(dir, 'db.lock'))).toBe(false);
  }, 120_000);

  it('a holder suspended past the stale threshold, whose lock another process took over, stops at once when it resumes', async () => {
    const dir = home();
    const holder = await startHolder(dir);
    holder.child.kill('SIGSTOP');
    // Default stale threshold 20 s: the next process takes the lock over and holds the database.
    const next = track(spawnChild(dir, 40_000, 'hold'));
    await waitFor('the second holder', () => next.stdout().includes('ready') || next.child.exitCode !== null, 60_000);
    expect(next.stderr()).toBe('');
    holder.child.kill('SIGCONT');
    // Its next lock refresh finds the lock taken: it exits 1 without writing (or closing) anything.
    expect(await holder.exited).toBe(1);
    expect(holder.stderr()).toMatch(/lost the embedded database at \S+ to another process .*Stopping now without writing to it again/);
    expect(holder.stdout()).not.toContain('closed');
    // The new holder is undisturbed, and its data is whole.
    next.child.stdin!.write('close\n');
    expect(await next.exited).toBe(0);
    const reader = track(spawnChild(dir, 5_000, 'read'));
    expect(await reader.exited).toBe(0);
    expect(reader.stdout()).toMatch(new RegExp(`rows \\[\\{"pid":${holder.child.pid}\\},\\{"pid":${next.child.pid}\\}\\]`));
  }, 120_000);

  it('locks in process too, releases on close, and leaves in-memory databases alone', async () => {
    const dir = home();
    const first = await openDatabase({ home: dir });
    expect(existsSync(join(dir, 'db.lock'))).toBe(true);
    await expect(openDatabase({ home: dir, lockWaitMs: 300 })).rejects.toBeInstanceOf(EmbeddedDatabaseBusyError);
    await first.close();
    expect(existsSync(join(dir, 'db.lock'))).toBe(false);
    const again = await openDatabase({ home: dir, lockWaitMs: 0 });
    await again.close();

    const a = await openDatabase({ memory: true });
    const b = await openDatabase({ memory: true });
    await Promise.all([a.close(), b.close()]);
  }, 120_000);

  it('is a CLI error with exit code 1 (message printed, no stack trace)', () => {
    const error = new EmbeddedDatabaseBusyError('/x/db');
    expect(error).toBeInstanceOf(CliError);
    expect(error.exitCode).toBe(ExitCode.failed);
  });
});
