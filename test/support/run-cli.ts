import { PassThrough } from 'node:stream';
import { runCli } from '../../cli/main.js';
import type { Clock } from '../../lib/clock.js';

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
