import type { Database, Session } from '../../db/connection.js';
import { NeedsPersonError } from '../../cli/exit-codes.js';
import type { Logger } from '../../lib/logger.js';
import { bodyKeyOf } from './message-key.js';
import { findStoredBodies, findStoredKeys, insertMailMessages, type MailMessageRow } from './sql.js';
import type { MailboxMessage, MailboxSource } from './types.js';

/** What a stream's classifier says about one message. */
export interface Classification {
  /** Recorded in mail_message.classification (jmrp: arf, jmrp_legacy, not_a_report, malformed). */
  classification: string;
  /** Set when the message cannot be used: it is recorded as quarantined with this reason and moved to
   * the quarantine folder. */
  quarantineReason?: string | null;
  /** Optional note kept with a message that is not quarantined. */
  reason?: string | null;
}

/** A message that now has its mail_message row (`ref` is repwatch.mail_message.id). */
export interface StoredMessage extends MailboxMessage {
  ref: number;
}

export type MessageOutcome = 'stored' | 'duplicate' | 'quarantined' | 'failed';

export interface MessageResult<R, S> {
  key: string;
  location: string;
  messageId: string | null;
  size: number;
  outcome: MessageOutcome;
  /** null for duplicates (not classified again) and failures. */
  classification: string | null;
  reason: string | null;
  /** The classifier's result (new messages only; in onCommitted, not in DrainResult.messages). */
  result?: R;
  /** What the stream's store step returned for it (stored, not quarantined; in onCommitted only). */
  stored?: S;
}

export interface DrainOptions<R extends Classification, S> {
  database: Database;
  source: MailboxSource;
  stream: 'jmrp' | 'bounces';
  /** Pure: raw bytes in, a classification out. A throw is caught and quarantines the message. */
  classify: (raw: Buffer, message: MailboxMessage) => R;
  /** Store what the stream derives from the messages of one batch, inside the batch's transaction.
   * Called only for new, non-quarantined messages; returns one value per item, in order. */
  storeBatch?: (session: Session, items: { message: StoredMessage; result: R }[]) => Promise<S[]>;
  /** The one-message form of storeBatch, for streams that do not need bulk statements. */
  store?: (session: Session, message: StoredMessage, result: R) => Promise<S>;
  maxMessageBytes: number;
  batchSize?: number;
  /** Keep the raw bytes in mail_message.raw (default true: derived tables can be rebuilt from them). */
  keepRaw?: boolean;
  /** The bytes to keep for a classified message when they must differ from those received (personal
   * data removed); the key and sha256 stay those of the received bytes. undefined: as received; null:
   * none (the message itself stays in the mailbox's archive). */
  storedRaw?: (raw: Buffer, result: R) => Buffer | null | undefined;
  /** After each batch's commit, before the source archives it (e.g. recompute the touched days). */
  onCommitted?: (results: MessageResult<R, S>[]) => Promise<void>;
  logger?: Logger;
  /** How many times a failed batch transaction is retried as a whole before going message by message. */
  batchRetries?: number;
}

export interface DrainResult<R, S> {
  mailbox: string;
  seen: number;
  stored: number;
  duplicates: number;
  quarantined: number;
  failed: number;
  /** New messages per classification (duplicates not counted). */
  byClassification: Record<string, number>;
  archived: number;
  /** Messages the source could not move after commit (they are recognised by key next run). */
  settleFailures: number;
  messages: MessageResult<R, S>[];
  /** Set when the run stopped early (mailbox or database unreachable); what was committed stays. */
  error?: string;
  /** The error is one only a person can fix (a login, a folder, TLS settings): retrying will not help. */
  needsPerson?: boolean;
}

/**
 * Drain a mailbox once: read batches, keep every message in repwatch.mail_message exactly once
 * (unique (stream, message_key)), hand the usable ones to the stream's store step in the same
 * transaction, and only after the commit tell the source what to archive and what to quarantine.
 * Never throws for a bad message; stops (with `error`) only when the mailbox or the database fails.
 */
export async function drainMailbox<R extends Classification, S = void>(options: DrainOptions<R, S>): Promise<DrainResult<R, S>> {
  const { database, source, stream, logger } = options;
  const keepRaw = options.keepRaw ?? true;
  const out: DrainResult<R, S> = {
    mailbox: source.name,
    seen: 0,
    stored: 0,
    duplicates: 0,
    quarantined: 0,
    failed: 0,
    byClassification: Object.create(null) as Record<string, number>,
    archived: 0,
    settleFailures: 0,
    messages: [],
  };
  const iterator = source.batches({ batchSize: options.batchSize ?? 200, maxMessageBytes: options.maxMessageBytes })[Symbol.asyncIterator]();
  try {
    const first = await iterator.next();
    let prepared: Prepared<R, S> | null = first.done ? null : await prepareBatch(options, first.value, new Map());
    while (prepared) {
      out.seen += prepared.batch.length;
      // Pipelined: while the database commits this batch, the next one is read and classified (the
      // parser's CPU and the server's work overlap). Its duplicates against this batch are known in
      // memory; anything else another run commits meanwhile is caught by the unique key on insert.
      const committing = commitBatch(options, prepared, keepRaw);
      committing.catch(() => undefined);
      let next: Prepared<R, S> | null = null;
      let sourceError: unknown = null;
      try {
        const step = await iterator.next();
        if (!step.done) next = await prepareBatch(options, step.value, prepared.freshKeys);
      } catch (error) {
        sourceError = error;
      }
      const results = await committing;
      const failed = results.filter((r) => r.outcome === 'failed');
      for (const r of results) {
        // The run's list keeps the outcome only: a parsed result per message for a 100,000-message
        // mailbox would hold the whole mailbox in memory. Full results go to onCommitted per batch.
        out.messages.push({ key: r.key, location: r.location, messageId: r.messageId, size: r.size, outcome: r.outcome, classification: r.classification, reason: r.reason });
        if (r.outcome === 'stored') out.stored += 1;
        else if (r.outcome === 'duplicate') out.duplicates += 1;
        else if (r.outcome === 'quarantined') out.quarantined += 1;
        else out.failed += 1;
        if ((r.outcome === 'stored' || r.outcome === 'quarantined') && r.classification) {
          out.byClassification[r.classification] = (out.byClassification[r.classification] ?? 0) + 1;
        }
      }
      if (options.onCommitted) await options.onCommitted(results);
      const settle = await source.settle({
        archive: results.filter((r) => r.outcome === 'stored' || (r.outcome === 'duplicate' && r.reason !== QUARANTINED_EARLIER)).map((r) => r.key),
        quarantine: results.filter((r) => r.outcome === 'quarantined' || (r.outcome === 'duplicate' && r.reason === QUARANTINED_EARLIER)).map((r) => r.key),
      });
      out.archived += settle.moved;
      out.settleFailures += settle.failed;
      if (settle.error) logger?.warn({ mailbox: source.name, failed: settle.failed, err: settle.error }, 'could not archive messages; they are recognised by key on the next run');
      if (failed.length > 0) {
        out.error = `mailbox ${source.name}: database unavailable: ${failed[0]!.reason}`;
        break;
      }
      if (sourceError) throw sourceError;
      prepared = next;
    }
  } catch (error) {
    out.error = `mailbox ${source.name}: ${(error as Error)?.message ?? String(error)}`;
    if (error instanceof NeedsPersonError) out.needsPerson = true;
    logger?.error({ mailbox: source.name, err: out.error }, 'mailbox drain stopped');
  } finally {
    await iterator.return?.(undefined).catch(() => undefined);
    if (source.flush) {
      const flushed = await source.flush().catch((error: Error) => ({ moved: 0, failed: 0, error: error.message }));
      out.archived += flushed.moved;
      out.settleFailures += flushed.failed;
      if (flushed.error) logger?.warn({ mailbox: source.name, failed: flushed.failed, err: flushed.error }, 'could not archive messages; they are recognised by key on the next run');
    }
    await source.close().catch(() => undefined);
  }
  return out;
}

const QUARANTINED_EARLIER = 'quarantined earlier';

interface Pending<R> {
  message: MailboxMessage;
  row: MailMessageRow;
  result?: R;
}

interface Prepared<R, S> {
  batch: MailboxMessage[];
  /** Slots in the batch's order: a key, or `key#n` for a duplicate copy. */
  order: string[];
  results: Map<string, MessageResult<R, S>>;
  fresh: Pending<R>[];
  /** Keys and body keys of this batch's new messages and whether they are quarantined (for the next batch). */
  freshKeys: Map<string, boolean>;
}

/** Look up known keys and classify the new messages of a batch (no writes). */
async function prepareBatch<R extends Classification, S>(options: DrainOptions<R, S>, batch: MailboxMessage[], previous: Map<string, boolean>): Promise<Prepared<R, S>> {
  const results = new Map<string, MessageResult<R, S>>();
  const order: string[] = [];
  // Keys already stored (rerun, crash between commit and archive) are not classified again; nor are
  // other deliveries of a stored message (same Message-ID and body, other trace headers).
  const known = await findStoredKeys(options.database, options.stream, [...new Set(batch.map((m) => m.key))]);
  // Body keys only for messages not already known by their key: a rerun over a kept mbox hashes nothing twice.
  const bodyKeys = batch.map((m) => (m.raw && !known.has(m.key) && !previous.has(m.key) ? bodyKeyOf(m.raw, m.messageId) : null));
  const knownBodies = await findStoredBodies(options.database, options.stream, [...new Set(bodyKeys.filter((k): k is string => k !== null))]);
  const fresh: Pending<R>[] = [];
  const freshKeys = new Map<string, boolean>();
  for (const [i, message] of batch.entries()) {
    // Classifying is synchronous CPU work that runs while the previous batch streams to the database:
    // yield to the event loop now and then so that stream (and the server) never waits for us.
    if (i % 32 === 31) await new Promise((resolve) => setImmediate(resolve));
    order.push(message.key);
    const bodyKey = bodyKeys[i] ?? null;
    const sameBytes = known.get(message.key)?.quarantined ?? previous.get(message.key) ?? freshKeys.get(message.key);
    const sameBody = bodyKey === null ? undefined : (knownBodies.get(bodyKey)?.quarantined ?? previous.get(bodyKey) ?? freshKeys.get(bodyKey));
    const earlier = sameBytes ?? sameBody;
    if (earlier !== undefined) {
      // A second copy follows the first copy's fate: collect it under a slot of its own.
      const slot = `${message.key}#${order.length}`;
      order[order.length - 1] = slot;
      const reason = earlier ? QUARANTINED_EARLIER : sameBytes === undefined ? DELIVERED_AGAIN : null;
      results.set(slot, { ...identity(message), outcome: 'duplicate', classification: null, reason });
      continue;
    }
    const pending = classifyOne(options, message);
    pending.row.bodyKey = bodyKey;
    freshKeys.set(message.key, pending.row.quarantined);
    if (bodyKey !== null) freshKeys.set(bodyKey, pending.row.quarantined);
    fresh.push(pending);
  }
  return { batch, order, results, fresh, freshKeys };
}

/** Why a message the classifier failed on keeps no bytes (in a stream that protects them). */
const UNPROTECTED_NOT_KEPT = "raw bytes not kept: the classifier failed before personal data could be removed from them (the message itself stays in the mailbox)";

/** The reason a redelivered copy (same Message-ID and body, other trace headers) is not stored again. */
const DELIVERED_AGAIN = 'delivered again: the same Message-ID and body as a stored message (only trace headers differ)';

function identity(m: MailboxMessage) {
  return { key: m.key, location: m.location, messageId: m.messageId, size: m.size };
}

/** Write a prepared batch in one transaction; on failure retry, then message by message. */
async function commitBatch<R extends Classification, S>(options: DrainOptions<R, S>, prepared: Prepared<R, S>, keepRaw: boolean): Promise<MessageResult<R, S>[]> {
  const { database, stream, source } = options;
  const { results, fresh, order } = prepared;
  const base = identity;

  const commit = async (items: Pending<R>[]) =>
    database.transaction(async (session) => {
      const ids = await insertMailMessages(session, stream, source.name, items.map((p) => p.row), keepRaw);
      const toStore: { message: StoredMessage; result: R }[] = [];
      for (const p of items) {
        const ref = ids.get(p.message.key);
        if (ref === undefined) {
          results.set(p.message.key, { ...base(p.message), outcome: 'duplicate', classification: null, reason: 'stored meanwhile by another run' });
        } else if (p.row.quarantined) {
          results.set(p.message.key, { ...base(p.message), outcome: 'quarantined', classification: p.row.classification, reason: p.row.reason, ...(p.result ? { result: p.result } : {}) });
        } else {
          toStore.push({ message: { ...p.message, ref }, result: p.result! });
          results.set(p.message.key, { ...base(p.message), outcome: 'stored', classification: p.row.classification, reason: p.row.reason, result: p.result! });
        }
      }
      const stored = await storeAll(options, session, toStore);
      toStore.forEach((item, i) => {
        const r = results.get(item.message.key);
        if (r) r.stored = stored[i];
      });
    });

  let done = false;
  for (let attempt = 0; attempt <= (options.batchRetries ?? 1) && !done; attempt++) {
    try {
      await commit(fresh);
      done = true;
    } catch (error) {
      options.logger?.warn({ mailbox: source.name, attempt, err: (error as Error).message }, 'batch transaction failed');
    }
  }
  if (!done) {
    // One message at a time: a message that breaks its store step is quarantined with the reason;
    // if even that cannot be written the database is down and the message stays in the mailbox.
    for (const p of fresh) {
      try {
        await commit([p]);
      } catch (error) {
        const reason = `could not be stored: ${(error as Error).message}`.slice(0, 2000);
        try {
          await commit([{ message: p.message, row: { ...p.row, quarantined: true, reason } }]);
        } catch (again) {
          results.set(p.message.key, { ...base(p.message), outcome: 'failed', classification: null, reason: (again as Error).message });
        }
      }
    }
  }
  return order.map((slot) => results.get(slot)!).filter(Boolean);
}

function classifyOne<R extends Classification>(options: Pick<DrainOptions<R, never>, 'classify' | 'maxMessageBytes' | 'storedRaw'>, message: MailboxMessage): Pending<R> {
  if (!message.raw) {
    const reason = `message of ${message.size} bytes is larger than the ${options.maxMessageBytes}-byte cap (maxMessageBytes)`;
    return { message, row: { message, classification: 'oversize', reason, quarantined: true } };
  }
  try {
    const result = options.classify(message.raw, message);
    const quarantined = Boolean(result.quarantineReason);
    const stored = options.storedRaw?.(message.raw, result);
    return {
      message,
      result,
      row: { message, classification: result.classification, reason: (quarantined ? result.quarantineReason : result.reason) ?? null, quarantined, ...(stored !== undefined ? { storedRaw: stored } : {}) },
    };
  } catch (error) {
    const reason = `classifier failed: ${(error as Error)?.message ?? String(error)}`.slice(0, 1800);
    // A stream that protects the bytes it keeps (storedRaw) never got to: they may hold personal data
    // it would have removed, so none are kept. Others keep them as received.
    if (options.storedRaw) return { message, row: { message, classification: 'malformed', reason: `${reason}; ${UNPROTECTED_NOT_KEPT}`, quarantined: true, storedRaw: null } };
    return { message, row: { message, classification: 'malformed', reason, quarantined: true } };
  }
}

async function storeAll<R extends Classification, S>(options: DrainOptions<R, S>, session: Session, items: { message: StoredMessage; result: R }[]): Promise<S[]> {
  if (items.length === 0) return [];
  if (options.storeBatch) return options.storeBatch(session, items);
  if (options.store) {
    const out: S[] = [];
    for (const item of items) out.push(await options.store(session, item.message, item.result));
    return out;
  }
  return [];
}
