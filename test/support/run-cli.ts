import { PassThrough } from 'node:stream';
import { runCli } from '../../cli/main.js';
import type { Clock } from '../../lib/clock.js';
import { openDatabase, type Database } from '../../db/connection.js';
import type { TestDatabase } from './backends.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in-process with its own environment and captured output. */
export async function runCliCaptured(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; clock?: Clock } = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await runCli(args, { env: options.env ?? {}, cwd: options.cwd, clock: options.clock, stdout, stderr });
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/**
 * Read the database a CLI run wrote: the server test database when there is one, else the embedded
 * database under `home`, opened after the CLI closed it and closed again (it serves one process).
 */
export async function inspectCliDatabase<T>(handle: TestDatabase | undefined, home: string, fn: (db: Database) => Promise<T>): Promise<T> {
  if (handle) return fn(handle.database);
  const db = await openDatabase({ home });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
