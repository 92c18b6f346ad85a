import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readMessageFile } from './file-message.js';
import type { BatchOptions, MailboxMessage, MailboxSource } from './types.js';

/**
 * .eml files given one by one or as folders (every `*.eml` inside, sorted by name, not recursive).
 * Read-only: the files are the user's, so settle() moves nothing; reruns are recognised by key.
 */
export function emlSource(options: { paths: string[]; name?: string }): MailboxSource {
  const name = options.name ?? `eml:${options.paths.length === 1 ? basename(options.paths[0]!) : `${options.paths.length} paths`}`;
  return {
    kind: 'eml',
    name,
    archives: false,
    async *batches({ batchSize, maxMessageBytes }: BatchOptions) {
      const files = await expand(options.paths);
      for (let i = 0; i < files.length; i += batchSize) {
        const batch: MailboxMessage[] = [];
        for (const file of files.slice(i, i + batchSize)) batch.push(await readMessageFile(file, maxMessageBytes));
        yield batch;
      }
    },
    async settle() {
      return { moved: 0, failed: 0 };
    },
    async backlog() {
      return (await expand(options.paths)).length;
    },
    async close() {},
  };
}

async function expand(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = (await readdir(path, { withFileTypes: true }))
        .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.eml'))
        .map((e) => join(path, e.name))
        .sort();
      files.push(...entries);
    } else {
      files.push(path);
    }
  }
  return files;
}
