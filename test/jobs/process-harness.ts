import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { generateReports, mboxEntry } from '../../bench/generate-reports.js';

/** Helpers for tests that run the real `repwatch` binary as child processes against one database. */

export const ROOT = resolve(import.meta.dirname, '../..');
/** A private build: dist/ is shared with everyone's tests and builds, and a half-written dist/ would
 * make these tests fail for reasons of their own. Under the repository (gitignored) so that the
 * compiled code finds node_modules. */
const BUILD = join(ROOT, 'test-artifacts', `jobs-build-${process.pid}`);
const BIN = join(BUILD, 'bin/repwatch.js');

/** Compile the code under test into the private build (other people's unfinished files may have
 * type errors; tsc still emits, and the entry point must exist). */
export function buildOnce(): void {
  rmSync(BUILD, { recursive: true, force: true });
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(BUILD, 'dist')], { cwd: ROOT, stdio: 'pipe' });
  } catch {
    // type errors elsewhere: the emitted JavaScript is still there
  }
  if (!existsSync(join(BUILD, 'dist/cli/main.js')) || !existsSync(join(BUILD, 'dist/jobs/runner.js'))) throw new Error(`the build did not produce ${BUILD}/dist`);
  mkdirSync(join(BUILD, 'bin'), { recursive: true });
  copyFileSync(join(ROOT, 'bin/repwatch.js'), BIN);
}

export function removeBuild(): void {
  rmSync(BUILD, { recursive: true, force: true });
}

export interface Child {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnRepwatch(args: string[], env: Record<string, string>, options: { stdin?: 'ignore' | 'pipe' } = {}): Child {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: env.REPWATCH_HOME ?? ROOT,
    env: { PATH: process.env.PATH ?? '', REPWATCH_LOG_LEVEL: 'info', ...env },
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => Buffer.concat(out).toString('utf8'), stderr: () => Buffer.concat(err).toString('utf8'), exited };
}

/** pino JSON lines from a child's stderr. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function tempDir(prefix = 'repwatch-jobs-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** An mbox of `count` generated complaint reports (the three JMRP shapes) dated in the last days. */
export function writeMbox(dir: string, count: number, start: string, seed = 7): string {
  const path = join(dir, `complaints-${count}.mbox`);
  let text = '';
  for (const { eml } of generateReports({ count, seed, start, days: 3 })) text += mboxEntry(eml);
  writeFileSync(path, text);
  return path;
}

export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const path = join(dir, 'repwatch.yaml');
  writeFileSync(path, stringify(config));
  return path;
}
