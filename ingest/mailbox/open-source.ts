import type { z } from 'zod';
import type { mailboxSchema } from '../../config/schema.js';
import type { Logger } from '../../lib/logger.js';
import { imapSource } from './imap-source.js';
import { maildirSource } from './maildir-source.js';
import { mboxSource } from './mbox-source.js';
import type { MailboxSource } from './types.js';

export type MailboxConfig = z.infer<typeof mailboxSchema>;

/** The source for one configured mailbox (`jmrp.mailboxes[]` or `bounces.mailboxes[]`). Passwords were
 * resolved from passwordFile and registered for redaction when the config was loaded. */
export function openMailboxSource(mailbox: MailboxConfig, options: { logger?: Logger } = {}): MailboxSource {
  if (mailbox.imap) {
    const imap = mailbox.imap;
    return imapSource({
      name: mailbox.name,
      host: imap.host,
      port: imap.port,
      secure: imap.secure,
      user: imap.user,
      password: imap.password ?? '',
      folder: imap.folder,
      archiveFolder: imap.archiveFolder,
      quarantineFolder: imap.quarantineFolder,
      tlsRejectUnauthorized: imap.tlsRejectUnauthorized,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  if (mailbox.maildir) return maildirSource({ path: mailbox.maildir, name: mailbox.name, ...(options.logger ? { logger: options.logger } : {}) });
  if (mailbox.mbox) return mboxSource({ path: mailbox.mbox, name: mailbox.name, quoting: mailbox.quoting ?? 'mboxrd' });
  throw new Error(`mailbox ${mailbox.name} has no imap, maildir or mbox`);
}

/** The IMAP batch size of a configured mailbox (about 200 by default), or the default for files. */
export function batchSizeOf(mailbox: MailboxConfig | undefined, fallback = 500): number {
  return mailbox?.imap?.batchSize ?? fallback;
}
