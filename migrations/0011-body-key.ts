import type { Migration } from './migration.js';

/**
 * A second identity for a message: its Message-ID with the sha256 of its body (after the header block).
 * The same report delivered twice differs in its trace headers (each delivery adds a Received line),
 * so the message key (Message-ID + sha256 of all the bytes) differs too; the body key does not, and a
 * redelivered copy is recognised and not counted again. Null without a Message-ID (a body alone says
 * too little) and for messages over the size cap (their bytes were not read). Messages stored before
 * this migration have none.
 *
 * byte_size becomes bigint: an IMAP server may report any size for a message it does not send (over the
 * cap), and a value an int cannot hold failed the whole batch's COPY.
 */
export const migration: Migration = {
  id: 11,
  name: 'body-key',
  sql: String.raw`
alter table repwatch.mail_message add column if not exists body_key text;
create unique index if not exists mail_message_body_key on repwatch.mail_message (stream, body_key) where body_key is not null;
alter table repwatch.mail_message alter column byte_size type bigint;
`,
};
