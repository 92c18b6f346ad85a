import type { Config } from '../../config/schema.js';
import type { Database } from '../../db/connection.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { notePendingDays, recomputeDays } from '../../transform/recompute.js';
import { detectRelistings } from '../../delisting/relisting.js';
import { drainMailbox, type DrainResult } from '../mailbox/drain.js';
import { batchSizeOf, openMailboxSource } from '../mailbox/open-source.js';
import type { MailboxSource } from '../mailbox/types.js';
import { classifyBounce, storeBounces, type BounceClassification, type StoredBounce } from './load-bounces.js';

export interface BounceIngestSummary
  extends Pick<DrainResult<unknown, unknown>, 'mailbox' | 'seen' | 'stored' | 'duplicates' | 'quarantined' | 'failed' | 'byClassification' | 'archived'> {
  recipients: number;
  evidence: number;
  /** Cases moved to `relisted` by this run. */
  relistedCases: number[];
  /** Days whose decisions were recomputed. */
  days: string[];
  error?: string;
  /** `error` is one only a person can fix (IMAP login, folder, TLS): exit 3, not retried blindly. */
  needsPerson?: boolean;
}

export interface BounceIngestContext {
  database: Database;
  config: Config;
  clock: Clock;
  logger?: Logger;
}

/**
 * Drain one mailbox of bounces: every message kept once in repwatch.mail_message (stream 'bounces'),
 * parsed bounces and their block evidence stored in the same transaction, archived only after the
 * commit (the shared drain loop of ingest/mailbox). Then relistings are detected and the decisions of
 * the touched days recomputed. Never throws for a bad message.
 */
export async function ingestBounces(ctx: BounceIngestContext, source: MailboxSource, options: { batchSize?: number } = {}): Promise<BounceIngestSummary> {
  const days = new Set<string>();
  let recipients = 0;
  let evidence = 0;
  const result: DrainResult<BounceClassification, StoredBounce> = await drainMailbox<BounceClassification, StoredBounce>({
    database: ctx.database,
    source,
    stream: 'bounces',
    classify: classifyBounce,
    storeBatch: async (session, items) => {
      const stored = await storeBounces(session, source.name, items);
      await notePendingDays(session, stored.flatMap((s) => s.days));
      return stored;
    },
    maxMessageBytes: ctx.config.jmrp.maxMessageBytes,
    batchSize: options.batchSize ?? 500,
    ...(ctx.logger ? { logger: ctx.logger } : {}),
    onCommitted: async (results) => {
      for (const r of results) {
        if (!r.stored) continue;
        recipients += r.stored.recipients;
        evidence += r.stored.evidence;
        for (const day of r.stored.days) days.add(day);
      }
    },
  });
  const relisted = await ctx.database.transaction((session) => detectRelistings(session, ctx.clock.now()));
  for (const day of relisted.days) days.add(day);
  const touched = [...days].sort();
  await recomputeDays(ctx.database, ctx.config, touched); // with no day of its own: days an earlier run left pending
  const summary: BounceIngestSummary = {
    mailbox: result.mailbox,
    seen: result.seen,
    stored: result.stored,
    duplicates: result.duplicates,
    quarantined: result.quarantined,
    failed: result.failed,
    byClassification: { ...result.byClassification },
    archived: result.archived,
    recipients,
    evidence,
    relistedCases: relisted.cases,
    days: touched,
    ...(result.error ? { error: result.error } : {}),
    ...(result.needsPerson ? { needsPerson: true } : {}),
  };
  ctx.logger?.info({ source: 'bounces', ...summary, days: touched.length }, 'bounces ingested');
  return summary;
}

/** The scheduler's job: drain every configured `bounces.mailboxes[]` once, one summary per mailbox. */
export async function runBouncesJob(ctx: BounceIngestContext): Promise<BounceIngestSummary[]> {
  const out: BounceIngestSummary[] = [];
  for (const mailbox of ctx.config.bounces.mailboxes) {
    const source = openMailboxSource(mailbox, ctx.logger ? { logger: ctx.logger } : {});
    out.push(await ingestBounces(ctx, source, { batchSize: batchSizeOf(mailbox) }));
  }
  return out;
}
