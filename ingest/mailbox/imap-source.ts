import { createHash } from 'node:crypto';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import type { Logger } from '../../lib/logger.js';
import { keyOf, messageKey, readMessageId } from './message-key.js';
import { MailboxNeedsPersonError, type BatchOptions, type MailboxMessage, type MailboxSource, type SettleOutcome } from './types.js';
export { MailboxNeedsPersonError } from './types.js';

export interface ImapSourceOptions {
  name: string;
  host: string;
  port?: number | undefined;
  /** true: TLS from the start (default); 'starttls': upgrade required; false: plain text (tests, local relays). */
  secure: boolean | 'starttls';
  user: string;
  password: string;
  folder: string;
  archiveFolder: string;
  quarantineFolder: string;
  tlsRejectUnauthorized?: boolean;
  /** Committed messages are moved once this many have accumulated (and at the end of the run); default 5,000. */
  moveEvery?: number;
  /** Reconnects after a dropped connection before the run gives up (default 5), backoff doubling from baseDelayMs. */
  reconnectAttempts?: number;
  baseDelayMs?: number;
  logger?: Logger;
}


class ConnectionLostError extends Error {}

/** What imapflow is given for a mailbox: `secure` true is TLS from the first byte (port 993),
 * 'starttls' requires the upgrade on 143 (no plain-text fallback), false never upgrades. */
export function imapClientOptions(options: ImapSourceOptions): ImapFlowOptions {
  return {
    host: options.host,
    port: options.port ?? (options.secure === true ? 993 : 143),
    secure: options.secure === true,
    doSTARTTLS: options.secure === 'starttls' ? true : options.secure === false ? false : undefined,
    auth: { user: options.user, pass: options.password },
    tls: { rejectUnauthorized: options.tlsRejectUnauthorized ?? true },
    logger: false,
    connectionTimeout: 20_000,
    greetingTimeout: 15_000,
    socketTimeout: 120_000,
    disableAutoIdle: true,
  };
}

/**
 * An IMAP folder read with imapflow. Every IMAP command runs outside any FETCH iteration (fetchAll
 * collects first), under the client's mailbox lock, released in `finally`. Messages are moved to the
 * archive / quarantine folders only in settle(), which the drain loop calls after the database commit.
 * A dropped connection is reopened with exponential backoff and the operation repeated: fetches are
 * by UID, so a repeat never skips or doubles a message.
 */
export function imapSource(options: ImapSourceOptions): MailboxSource {
  const attempts = options.reconnectAttempts ?? 5;
  const baseDelay = options.baseDelayMs ?? 500;
  const moveEvery = options.moveEvery ?? 5000;
  let client: ImapFlow | null = null;
  let delimiter = '/';
  let uidValidity: bigint | null = null;
  /** UIDs handed out and not yet settled, by key (spans two batches: the drain loop reads ahead). */
  const pending = new Map<string, number[]>();

  const folderPath = (folder: string) => folder.split('/').filter(Boolean).join(delimiter);

  // The batch read ahead and settle()'s MOVE can both find the connection gone and reconnect at the
  // same moment: they share one attempt, so no second session is opened and left behind.
  let connecting: Promise<ImapFlow> | null = null;
  const connect = (): Promise<ImapFlow> => {
    if (connecting) return connecting;
    if (client?.usable) return Promise.resolve(client);
    connecting = openClient().finally(() => {
      connecting = null;
    });
    return connecting;
  };

  const openClient = async (): Promise<ImapFlow> => {
    const next = new ImapFlow(imapClientOptions(options));
    // Without a listener a socket error would be an uncaught 'error' event.
    next.on('error', (error: Error) => options.logger?.warn({ mailbox: options.name, err: error.message }, 'IMAP connection error'));
    try {
      await next.connect();
    } catch (error) {
      next.close();
      if ((error as { authenticationFailed?: boolean }).authenticationFailed) {
        throw new MailboxNeedsPersonError(`IMAP login to ${options.host} as ${options.user} failed for mailbox ${options.name}: check jmrp/bounces mailboxes[].imap.user and password`);
      }
      // A server without STARTTLS, a certificate that does not verify, TLS spoken to a plain-text port:
      // the same answer on every retry, so say what to check instead of reconnecting with backoff.
      if (isTlsFailure(error)) {
        throw new MailboxNeedsPersonError(
          `IMAP TLS to ${options.host}:${imapClientOptions(options).port} failed for mailbox ${options.name}: ${tlsReason(error)}; check imap.secure (true: TLS on 993, starttls: upgrade on 143, false: plain text), imap.port and the server's certificate`,
        );
      }
      throw error;
    }
    // The session is handed out only once its folders are there: a refused CREATE must not leave a
    // usable session behind that the next attempt would take without the archive folder.
    try {
      const folders = await next.list();
      delimiter = folders.find((f) => f.delimiter)?.delimiter ?? '/';
      const existing = new Set(folders.map((f) => f.path));
      if (!existing.has(folderPath(options.folder)) && options.folder.toUpperCase() !== 'INBOX') {
        throw new MailboxNeedsPersonError(`IMAP folder "${options.folder}" does not exist in mailbox ${options.name}: check imap.folder`);
      }
      for (const folder of [options.archiveFolder, options.quarantineFolder]) {
        if (!existing.has(folderPath(folder))) await next.mailboxCreate(folder.split('/').filter(Boolean));
      }
    } catch (error) {
      next.close();
      throw error;
    }
    client = next;
    return next;
  };

  /** Run fn with a connected client holding the folder lock; reconnect (up to `attempts` times, with
   * backoff) and repeat after a dropped connection. With no attempts left a drop ends the run. */
  const withFolder = async <T>(fn: (c: ImapFlow) => Promise<T>, retry: () => boolean = () => true): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      let c: ImapFlow | null = null;
      try {
        if (client && !client.usable) throw new ConnectionLostError(`IMAP connection to ${options.host} for mailbox ${options.name} was lost`);
        c = await connect();
        const lock = await c.getMailboxLock(folderPath(options.folder));
        try {
          const validity = c.mailbox ? c.mailbox.uidValidity : null;
          if (uidValidity !== null && validity !== null && validity !== uidValidity) {
            throw new MailboxNeedsPersonError(`IMAP UIDVALIDITY of ${options.folder} changed during the run; rerun the job`);
          }
          uidValidity = validity;
          return await fn(c);
        } finally {
          lock.release();
        }
      } catch (error) {
        if (error instanceof MailboxNeedsPersonError) throw error;
        const dropped = error instanceof ConnectionLostError || !c || !c.usable;
        if (!dropped || attempt >= attempts || !retry()) throw error;
        const delay = baseDelay * 2 ** attempt;
        options.logger?.warn({ mailbox: options.name, attempt: attempt + 1, delayMs: delay, err: (error as Error).message }, 'IMAP connection lost; reconnecting');
        // Only the session that failed: the other user may have opened a new one meanwhile.
        if (client === c || (client && !client.usable)) {
          client?.close();
          client = null;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };

  const toArchive: number[] = [];
  const toQuarantine: number[] = [];
  const moveNow = async (): Promise<{ moved: number; failed: number; error?: string }> => {
    const groups = [
      { uids: toArchive.splice(0), folder: options.archiveFolder },
      { uids: toQuarantine.splice(0), folder: options.quarantineFolder },
    ];
    const total = groups[0]!.uids.length + groups[1]!.uids.length;
    if (total === 0) return { moved: 0, failed: 0 };
    let moved = 0;
    try {
      await withFolder(async (c) => {
        for (const group of groups) {
          // UID sets packed into ranges (1:2000) and cut into commands of at most about 1,000
          // characters: servers refuse long command lines (RFC 2683 suggests 8,000 octets at most).
          // messageMove answers false, not an error, when the server refuses: that is not moved. Sets
          // done are dropped, so a repeat after a reconnect skips them.
          group.uids.sort((x, y) => x - y);
          while (group.uids.length > 0) {
            const [set, count] = uidSet(group.uids, 1000);
            if (!(await c.messageMove(set, folderPath(group.folder), { uid: true }))) {
              throw new Error(`the server refused to move ${group.uids.length} message(s) to ${group.folder}`);
            }
            moved += count;
            group.uids = group.uids.slice(count);
          }
        }
      });
      return { moved, failed: 0 };
    } catch (error) {
      return { moved, failed: total - moved, error: (error as Error).message };
    }
  };

  return {
    kind: 'imap',
    name: options.name,
    archives: true,
    async *batches({ batchSize, maxMessageBytes }: BatchOptions) {
      const uids: number[] = await withFolder(async (c) => {
        // UIDs only: Dovecot answers them from its index, where RFC822.SIZE for 20,000 messages means
        // reading every file up front while the parser waits. Sizes come with each batch.
        if (!c.mailbox || c.mailbox.exists === 0) return [];
        const found = await c.search({ all: true }, { uid: true });
        // imapflow answers false instead of throwing when the server refuses: not an empty folder.
        if (!Array.isArray(found)) throw new Error(`the server refused to list ${options.folder} (UID SEARCH ALL)`);
        return found.sort((a, b) => a - b);
      });
      // A batch read ahead that the caller no longer wants (it stopped early) is not fetched again
      // after a drop: reconnecting with backoff would hold the caller's stop for minutes.
      let abandoned = false;
      const fetchBatch = (slice: number[]) =>
        withFolder(async (c) => {
          const sized = await c.fetchAll(slice.join(','), { uid: true, size: true }, { uid: true });
          const small = sized.filter((m) => (m.size ?? 0) <= maxMessageBytes).map((m) => m.uid);
          const big = sized.filter((m) => (m.size ?? 0) > maxMessageBytes).map((m) => m.uid);
          return {
            full: small.length ? await c.fetchAll(small.join(','), { uid: true, source: true, internalDate: true, size: true }, { uid: true }) : [],
            heads: big.length ? await c.fetchAll(big.join(','), { uid: true, headers: true, internalDate: true, size: true }, { uid: true }) : [],
          };
        }, () => !abandoned);
      // One batch is read ahead: the server prepares batch n+1 while the caller parses and stores batch
      // n (a MOVE in settle() waits for that fetch: imapflow runs one command at a time under the lock).
      let ahead = uids.length > 0 ? fetchBatch(uids.slice(0, batchSize)) : null;
      ahead?.catch(() => undefined);
      try {
        for (let i = 0; ahead; i += batchSize) {
          const { full, heads } = await ahead;
          const rest = uids.slice(i + batchSize, i + 2 * batchSize);
          ahead = rest.length > 0 ? fetchBatch(rest) : null;
          ahead?.catch(() => undefined);
          const batch: MailboxMessage[] = [];
          for (const m of full) {
            if (!m.source) continue;
            const key = messageKey(m.source);
            batch.push({ ...key, size: m.source.length, raw: m.source, location: `${options.folder} uid ${m.uid}`, deliveredAt: toDate(m.internalDate) });
            pending.set(key.key, [...(pending.get(key.key) ?? []), m.uid]);
          }
          for (const m of heads) {
            // Not downloaded: the key hashes the header block and the size, which is as stable.
            const headers = m.headers ?? Buffer.alloc(0);
            const sha256 = createHash('sha256').update(`oversize ${m.size ?? 0}\n`).update(headers).digest('hex');
            const messageId = readMessageId(headers);
            const key = keyOf(messageId, sha256);
            batch.push({ key, sha256, messageId, size: m.size ?? 0, raw: null, location: `${options.folder} uid ${m.uid}`, deliveredAt: toDate(m.internalDate) });
            pending.set(key, [...(pending.get(key) ?? []), m.uid]);
          }
          if (batch.length > 0) yield batch;
        }
      } finally {
        // A caller that stops early: the fetch read ahead ends (without retries) before close() logs out.
        abandoned = true;
        await ahead?.catch(() => undefined);
      }
    },
    async settle(outcome: SettleOutcome) {
      // Committed messages are moved in groups: every MOVE makes Dovecot (and others) rewrite the
      // folder's index, which costs in proportion to the folder's size, so moving every 200 messages
      // out of a 20,000-message INBOX spends most of the run in MOVE (measured on the bench's 20,000:
      // every 2,000 drains at 1,167-1,201 reports/s, every 5,000 at 1,415-1,567/s, and all at the end no
      // faster). Moving later is still moving after the commit, and a message left behind by a crash is
      // recognised by its key on the next run (downloaded again, not stored again).
      for (const key of outcome.archive) toArchive.push(...(pending.get(key) ?? []));
      for (const key of outcome.quarantine) toQuarantine.push(...(pending.get(key) ?? []));
      for (const key of [...outcome.archive, ...outcome.quarantine]) pending.delete(key);
      if (toArchive.length + toQuarantine.length < moveEvery) return { moved: 0, failed: 0 };
      return moveNow();
    },
    flush: moveNow,
    async backlog() {
      const c = await connect();
      const status = await c.status(folderPath(options.folder), { messages: true });
      return status ? (status.messages ?? null) : null;
    },
    async close() {
      // Moves still deferred (a caller that never called flush) are done before logging out.
      if (toArchive.length + toQuarantine.length > 0 && client?.usable) await moveNow();
      const c = client;
      client = null;
      if (!c) return;
      try {
        if (c.usable) await c.logout();
      } catch {
        // already gone
      } finally {
        c.close();
      }
    },
  };
}

/** The first UIDs of a list sorted ascending as an IMAP sequence set of consecutive runs
 * (`4:9,12,15:20`) at most `maxLength` characters long, and how many UIDs of the list it holds. */
export function uidSet(sorted: readonly number[], maxLength: number): [set: string, count: number] {
  let set = '';
  let count = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1]! <= sorted[j]! + 1) j++;
    const run = sorted[i] === sorted[j] ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`;
    if (set && set.length + 1 + run.length > maxLength) break;
    set = set ? `${set},${run}` : run;
    count = j + 1;
    i = j + 1;
  }
  return [set, count];
}

function toDate(value: Date | string | undefined): Date | null {
  if (!value) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** imapflow marks a failed or impossible STARTTLS with tlsFailed; Node's TLS layer uses ERR_SSL_* /
 * ERR_TLS_* codes and OpenSSL's certificate codes (CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT…). */
function isTlsFailure(error: unknown): boolean {
  if ((error as { tlsFailed?: boolean })?.tlsFailed) return true;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && (/^ERR_(SSL|TLS)_/.test(code) || /CERT|SIGNATURE|ISSUER/.test(code));
}

/** OpenSSL's errors carry their words in `reason` ("wrong version number"); the message is a dump. */
function tlsReason(error: unknown): string {
  const reason = (error as { reason?: unknown })?.reason;
  if (typeof reason === 'string' && reason) return reason;
  return ((error as Error)?.message ?? String(error)).split('\n')[0]!.trim();
}
