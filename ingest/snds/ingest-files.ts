import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Database } from '../../db/connection.js';
import type { Config } from '../../config/schema.js';
import { utcDay, type Clock } from '../../lib/clock.js';
import { stat } from 'node:fs/promises';
import { emptyResult, ingestLocalInput } from './ingest-input.js';
import { addInput, newFeedResult, noteFutureDays, recompute, type SndsFeedResult } from './ingest-feed.js';
import type { SndsKind } from './raw-store.js';

/**
 * Files a person saved from the SNDS portal (also how history is backfilled), or stdin (`-`),
 * loaded under a feed name. stdin is spooled to a temporary file first: the bytes are stored before
 * they are parsed, and neither pass holds them in memory.
 */

export interface FileInput {
  kind: SndsKind;
  /** A path, or '-' for stdin. */
  path: string;
}

export interface IngestSndsFilesOptions {
  database: Database;
  config: Config;
  clock: Clock;
  feed: string;
  timezone: string;
  files: readonly FileInput[];
  cwd?: string;
  stdin?: NodeJS.ReadableStream;
  skipRecompute?: boolean;
}

export async function ingestSndsFiles(options: IngestSndsFilesOptions): Promise<SndsFeedResult> {
  const result = newFeedResult(options.feed);
  /** IP Data days loaded by this run's inputs so far, and from where. */
  const loadedDays = new Map<string, string>();
  for (const file of options.files) {
    let path = file.path;
    let cleanup = () => undefined as void;
    if (path === '-') {
      const dir = mkdtempSync(join(tmpdir(), 'repwatch-stdin-'));
      path = join(dir, 'stdin');
      cleanup = () => rmSync(dir, { recursive: true, force: true });
      await pipeline(options.stdin ?? process.stdin, createWriteStream(path));
    } else {
      path = resolve(options.cwd ?? process.cwd(), path);
      // Not a readable regular file (missing, a folder): say so, and record no download for it.
      const problem = await notARegularFile(path);
      if (problem) {
        const info = { source: 'file' as const, kind: file.kind, feed: options.feed, location: path, fetchedAt: options.clock.now() };
        addInput(result, emptyResult(info, 'failed', problem));
        continue;
      }
    }
    try {
      const input = await ingestLocalInput(
        options.database,
        { source: file.path === '-' ? 'stdin' : 'file', kind: file.kind, feed: options.feed, location: file.path === '-' ? 'stdin' : path, fetchedAt: options.clock.now() },
        path,
        options.timezone,
      );
      // Rows of one IP and activity start come from the last input holding them: a later input of this
      // run repeating rows an earlier one loaded replaces them. Legitimate for a corrected export, a
      // surprise for two overlapping files: say so.
      const again = input.rowsReplaced > 0 ? input.days.filter((day) => loadedDays.has(day)) : [];
      if (again.length > 0) {
        result.warnings.push(
          `${input.location} replaced ${input.rowsReplaced} stored row(s) (same IP and activity start) on ${again.length} day(s) that ${[...new Set(again.map((d) => loadedDays.get(d)))].join(', ')} also loaded earlier in this run (${again.slice(0, 3).join(', ')}${again.length > 3 ? ', …' : ''}): ` +
            'the later input\'s values are kept',
        );
      }
      for (const day of input.days) loadedDays.set(day, input.location);
      addInput(result, input);
    } finally {
      cleanup();
    }
  }
  noteFutureDays(result, utcDay(options.clock.now()));
  if (!options.skipRecompute) await recompute(options, result);
  return result;
}

async function notARegularFile(path: string): Promise<string | null> {
  try {
    const info = await stat(path);
    return info.isFile() ? null : info.isDirectory() ? 'is a folder, not an export file' : 'is not a regular file';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
  }
}
