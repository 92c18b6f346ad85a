import type { Dirent } from 'node:fs';
import { mkdir, readdir, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from '../../lib/logger.js';
import { readMessageFile } from './file-message.js';
import { MailboxNeedsPersonError, type BatchOptions, type MailboxMessage, type MailboxSource, type SettleOutcome } from './types.js';

export interface MaildirOptions {
  path: string;
  name: string;
  /** Maildir++ subfolders (`.repwatch.archive` shows in IMAP clients as repwatch/archive or repwatch.archive). */
  archiveFolder?: string;
  quarantineFolder?: string;
  /** Told about entries that are skipped (folders, symbolic links, other non-regular files). */
  logger?: Logger;
}

/**
 * A Maildir: messages are read from new/ and cur/; after the batch is committed each file is renamed
 * (atomic, same file system) into the archive or quarantine subfolder's cur/, marked seen. Nothing is
 * deleted; a crash before the rename leaves the file where it was and the next run recognises its key.
 */
export function maildirSource(options: MaildirOptions): MailboxSource {
  const archive = join(options.path, `.${options.archiveFolder ?? 'repwatch.archive'}`);
  const quarantine = join(options.path, `.${options.quarantineFolder ?? 'repwatch.quarantine'}`);
  /** Files handed out and not yet settled, by key (the same bytes in two files share a key). The
   * drain loop reads the next batch while the previous one commits, so this spans two batches. */
  const pending = new Map<string, string[]>();

  const listFiles = async (): Promise<string[]> => {
    const files: string[] = [];
    let folders = 0;
    for (const sub of ['new', 'cur']) {
      const dir = join(options.path, sub);
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      folders += 1;
      const names: string[] = [];
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        // Mail is regular files. A folder would stop every run (EISDIR); a symbolic link would have
        // repwatch store whatever it points at (/etc/passwd) and move the link: both are left alone.
        if (entry.isFile()) names.push(entry.name);
        else options.logger?.warn({ mailbox: options.name, path: join(dir, entry.name) }, 'skipped a Maildir entry that is not a regular file (a folder or a symbolic link): move it out of the Maildir');
      }
      files.push(...names.sort().map((e) => join(dir, e)));
    }
    // Without new/ and cur/ this is not a Maildir (a folder of .eml files, a typo): reading it as an
    // empty one would report success and leave its mail unread.
    if (folders === 0) {
      const exists = await stat(options.path).then(() => true, () => false);
      throw new MailboxNeedsPersonError(
        exists
          ? `${options.path} is not a Maildir: it has no new/ or cur/ folder (a folder of .eml files is read with --eml)`
          : `the Maildir ${options.path} does not exist: fix the mailbox's maildir path in the configuration, or restore the folder`,
      );
    }
    return files;
  };

  return {
    kind: 'maildir',
    name: options.name,
    archives: true,
    async *batches({ batchSize, maxMessageBytes }: BatchOptions) {
      const files = await listFiles(); // says so when the path is missing or is not a Maildir
      for (let i = 0; i < files.length; i += batchSize) {
        const batch: MailboxMessage[] = [];
        for (const file of files.slice(i, i + batchSize)) {
          let message: MailboxMessage;
          try {
            message = await readMessageFile(file, maxMessageBytes);
          } catch (error) {
            // Another reader moved it meanwhile: nothing to do with it in this run.
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
            throw error;
          }
          batch.push(message);
          pending.set(message.key, [...(pending.get(message.key) ?? []), file]);
        }
        yield batch;
      }
    },
    async settle(outcome: SettleOutcome) {
      let moved = 0;
      let failed = 0;
      let lastError: string | undefined;
      for (const [keys, target] of [
        [outcome.archive, archive],
        [outcome.quarantine, quarantine],
      ] as const) {
        if (keys.length === 0) continue;
        for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(target, sub), { recursive: true });
        for (const key of keys) {
          for (const file of pending.get(key) ?? []) {
            try {
              await rename(file, join(target, 'cur', seenName(basename(file))));
              moved += 1;
            } catch (error) {
              failed += 1;
              lastError = (error as Error).message;
            }
          }
          pending.delete(key);
        }
      }
      return lastError ? { moved, failed, error: lastError } : { moved, failed };
    },
    async backlog() {
      return (await listFiles()).length;
    },
    async close() {},
  };
}

/** Maildir info suffix `:2,S` (seen), keeping flags already there. */
function seenName(file: string): string {
  const info = file.indexOf(':2,');
  if (info === -1) return `${file}:2,S`;
  const flags = file.slice(info + 3);
  return flags.includes('S') ? file : `${file.slice(0, info + 3)}${[...flags, 'S'].sort().join('')}`;
}
