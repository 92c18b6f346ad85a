/**
 * The mailbox contract shared by every message stream (JMRP complaints, bounces). A source knows where
 * messages come from and nothing about the database: it yields batches of messages with a stable key,
 * and after the database has committed a batch it is told which keys to archive and which to
 * quarantine. Nothing is ever deleted.
 */
import { NeedsPersonError } from '../../cli/exit-codes.js';

export type MailboxKind = 'imap' | 'maildir' | 'mbox' | 'eml';

export interface MailboxMessage {
  /** Stable identity: `<Message-ID>|sha256` (see message-key.ts). The same bytes read twice, from a
   * rerun or a crash between commit and archive, give the same key. */
  key: string;
  /** The message's own Message-ID header (angle brackets kept), or null. */
  messageId: string | null;
  /** sha256 (hex) of the message bytes with line endings normalised to LF. */
  sha256: string;
  /** Size in bytes as the mailbox reports it (also for oversized messages whose bytes were not read). */
  size: number;
  /** The message bytes; null when the message is larger than the size cap (it is quarantined). */
  raw: Buffer | null;
  /** Where it was found, for people: `INBOX uid 42`, a file path, `mbox byte 1234`. */
  location: string;
  /** When the mailbox received it (IMAP INTERNALDATE, file mtime, mbox From_ line), if known. */
  deliveredAt: Date | null;
}

/** What the drain loop tells a source after a batch is committed. */
export interface SettleOutcome {
  /** Keys stored (or already stored by an earlier run) and not quarantined: move to the archive. */
  archive: string[];
  /** Keys recorded as quarantined (unparseable, oversized, failed to store): move to quarantine. */
  quarantine: string[];
}

export interface BatchOptions {
  batchSize: number;
  /** Messages larger than this come with `raw: null` and are quarantined. */
  maxMessageBytes: number;
}

export interface MailboxSource {
  readonly kind: MailboxKind;
  /** The mailbox name recorded with every message (config `name`, or derived from a path). */
  readonly name: string;
  /** Whether settle() moves anything (mbox and .eml files are read-only). */
  readonly archives: boolean;
  /**
   * Messages in batches. The consumer commits a batch and calls settle() before asking for the next
   * one, so an IMAP source is never inside a FETCH when it moves messages.
   */
  batches(options: BatchOptions): AsyncIterable<MailboxMessage[]>;
  /** Archive / quarantine the keys of the batch just committed. Errors are reported, not thrown:
   * a message left behind is recognised by its key on the next run. */
  settle(outcome: SettleOutcome): Promise<{ moved: number; failed: number; error?: string }>;
  /** Complete any moves settle() deferred (IMAP groups its MOVEs); the drain loop calls it once at the
   * end of a run, before close(). */
  flush?(): Promise<{ moved: number; failed: number; error?: string }>;
  /** How many messages wait in the mailbox (cheap where the backend can tell; null otherwise). */
  backlog?(): Promise<number | null>;
  close(): Promise<void>;
}

/** An error a person must act on (wrong password, missing folder, TLS settings, a path that is not a
 * mailbox): not retried; the CLI exits 3 and the scheduler records the run as needing a person. */
export class MailboxNeedsPersonError extends NeedsPersonError {
  constructor(message: string) {
    super(message);
    this.name = 'MailboxNeedsPersonError';
  }
}
