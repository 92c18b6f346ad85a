import type { Database, Session } from '../db/connection.js';

/** "repj": the first half of every job lock key, so job locks never meet the migration lock. */
const JOB_LOCK_CLASS = 0x7265706a;

/** The second half: FNV-1a of the job name as a signed int4 (computed here, not with the server's
 * hashtext, so every version of PostgreSQL and PGlite agrees). */
export function jobLockKey(job: string): [number, number] {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(job, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return [JOB_LOCK_CLASS, hash | 0];
}

/** Jobs held by this process, per database: PGlite is one session, where advisory locks are
 * re-entrant, so the in-process guard is what keeps two runs of one job apart there. */
const heldHere = new WeakMap<Database, Set<string>>();

export type LockOutcome<T> = { locked: true; value: T } | { locked: false; heldBy: 'this process' | 'another process' };

/** How often the lock's connection is checked while a job runs, and how long a check may go unanswered. */
export interface LockCheck {
  everyMs: number;
  answerWithinMs: number;
}

export const LOCK_CHECK: LockCheck = { everyMs: 5_000, answerWithinMs: 30_000 };

/** What the job did: its value, or what it threw. */
type Ran<T> = { ok: true; value: T } | { ok: false; error: unknown };

/**
 * Run fn while holding the job's session-level advisory lock (pg_try_advisory_lock: never waits). The
 * session stays checked out for the whole run, so the lock lives exactly as long as the run — and a
 * killed process loses it with its connection. fn gets the lock's session for the ledger writes.
 *
 * The job itself works on other connections, so the lock's connection sits idle and can be lost while
 * the job goes on (a database restart, idle_session_timeout, a network cut): the lock is gone and
 * another instance may start the same period. The connection is therefore checked every few seconds;
 * when a check fails, or goes unanswered, `lost` is aborted so the job stops instead of running beside
 * its successor (a report would be sent twice). On PGlite there is one session in one process: nothing
 * to check.
 */
export async function withJobLock<T>(database: Database, job: string, fn: (session: Session, lost: AbortSignal) => Promise<T>, check: LockCheck = LOCK_CHECK): Promise<LockOutcome<T>> {
  let held = heldHere.get(database);
  if (!held) heldHere.set(database, (held = new Set()));
  if (held.has(job)) return { locked: false, heldBy: 'this process' };
  held.add(job);
  try {
    const ran = await database
      .withSession(async (session): Promise<Ran<T> | null> => {
        const key = jobLockKey(job);
        const [row] = await session.query<{ locked: boolean }>('select pg_try_advisory_lock($1, $2) as locked', key);
        if (!row?.locked) return null;
        const lost = new AbortController();
        const watch = database.kind === 'postgres' ? watchLockSession(session, lost, check) : () => undefined;
        let ran: Ran<T>;
        try {
          ran = { ok: true, value: await fn(session, lost.signal) };
        } catch (error) {
          ran = { ok: false, error };
        } finally {
          watch();
        }
        // A lost connection is not asked to unlock (a query on one that stopped answering would wait
        // behind the unanswered check for as long as the socket lives, and the job with it): it is
        // discarded, which ends the lock if the server still has it.
        if (lost.signal.aborted) throw new LockSessionLost(ran);
        await session.query('select pg_advisory_unlock($1, $2)', key).catch(() => undefined);
        return ran;
      })
      .catch((error: unknown) => {
        if (error instanceof LockSessionLost) return error.ran as Ran<T>;
        throw error;
      });
    if (ran === null) return { locked: false, heldBy: 'another process' };
    if (!ran.ok) throw ran.error;
    return { locked: true, value: ran.value };
  } finally {
    held.delete(job);
  }
}

/** Carries a job's result out of a lock session that must be discarded (see db/connection.ts). */
class LockSessionLost extends Error {
  readonly discardConnection = true;
  constructor(readonly ran: unknown) {
    super('the connection holding the job lock was lost');
  }
}

/** Check the lock's session until the returned function is called; abort `lost` when it fails. */
function watchLockSession(session: Session, lost: AbortController, check: LockCheck): () => void {
  let askedAt: number | null = null;
  const timer = setInterval(() => {
    if (lost.signal.aborted) return;
    if (askedAt !== null) {
      if (Date.now() - askedAt > check.answerWithinMs) lost.abort(new Error('the connection holding the job lock stopped answering'));
      return;
    }
    askedAt = Date.now();
    session.query('select 1').then(
      () => {
        askedAt = null;
      },
      (error: unknown) => lost.abort(error),
    );
  }, check.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
