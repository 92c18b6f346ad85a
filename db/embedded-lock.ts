import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { CliError, ExitCode } from '../cli/exit-codes.js';

/**
 * The embedded database (PGlite) is single-process: two processes that open one data directory each
 * run their own PostgreSQL over the same files and silently corrupt them. openPglite therefore holds
 * an exclusive inter-process lock on the directory from before PGlite starts until it is closed.
 *
 * proper-lockfile takes the lock by mkdir of `<dataDir>.lock` (atomic, also on network file systems)
 * and keeps it fresh by touching its mtime; a lock whose mtime is older than the stale threshold
 * belongs to a process that died (kill -9, power loss) and is taken over.
 */

/** How long a second process waits for the directory by default before failing. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;
/**
 * A lock not refreshed for this long is considered abandoned. Generous, because PGlite runs queries
 * synchronously on the main thread and a long one delays the refresh; every process that opens one
 * directory must use the same value.
 */
export const DEFAULT_LOCK_STALE_MS = 20_000;
/** How often the holder refreshes the lock (well inside the stale threshold). */
const UPDATE_MS = 4_000;
/** Pause between attempts while another process holds the lock. */
const RETRY_MS = 200;

/** The data directory is held by another process and did not become free in time (exit 1). */
export class EmbeddedDatabaseBusyError extends CliError {
  constructor(readonly dataDir: string) {
    super(
      `the embedded database at ${dataDir} is in use by another repwatch process; wait for it to finish, ` +
        'or use PostgreSQL (DATABASE_URL) to run several at once',
    );
    this.name = 'EmbeddedDatabaseBusyError';
  }
}

export interface DataDirLockOptions {
  /** Give up after this long (0: one attempt). */
  waitMs?: number | undefined;
  staleMs?: number | undefined;
}

/**
 * Take the exclusive lock on `dataDir` (which must exist), retrying until `waitMs` has passed; resolves
 * to the function that releases it. Throws EmbeddedDatabaseBusyError when the time runs out.
 */
export async function lockDataDir(dataDir: string, options: DataDirLockOptions = {}): Promise<() => Promise<void>> {
  const waitMs = Math.max(0, options.waitMs ?? DEFAULT_LOCK_WAIT_MS);
  const stale = options.staleMs ?? DEFAULT_LOCK_STALE_MS;
  const deadline = Date.now() + waitMs;
  let compromised: Error | undefined;
  for (;;) {
    try {
      const release = await lockfile.lock(dataDir, {
        stale,
        update: Math.min(UPDATE_MS, Math.floor(stale / 2)),
        retries: 0,
        realpath: true,
        // proper-lockfile survives a suspended process or a busy event loop as long as the lock is
        // still ours; it calls this only when it is not: another process took it over as stale (this
        // one was stopped longer than the threshold) or it was removed. That process runs its own
        // PostgreSQL over these files now: every further write from here would corrupt them, and
        // closing PGlite writes too. Stop at once, saying why.
        onCompromised: (error) => {
          compromised = error;
          process.stderr.write(
            `repwatch: lost the embedded database at ${dataDir} to another process (${error.message}): ` +
              'this process was stopped longer than the lock\'s stale threshold. Stopping now without writing to it again.\n',
          );
          process.exit(ExitCode.failed);
        },
      });
      return async () => {
        // A compromised lock is no longer ours to remove.
        if (compromised) return;
        await release().catch(() => undefined);
      };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ELOCKED') throw error;
      const left = deadline - Date.now();
      if (left <= 0) throw new EmbeddedDatabaseBusyError(dataDir);
      await sleep(Math.min(RETRY_MS, left));
    }
  }
}
