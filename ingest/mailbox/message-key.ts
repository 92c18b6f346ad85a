import { createHash, type Hash } from 'node:crypto';
import { splitHeaderBlock } from './mime.js';

/** A header scan, not a full parse: this runs for every message before anything else. */
const MESSAGE_ID = /(?:^|\n)message-id:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)/i;

/**
 * The stable key of a message: its Message-ID together with the sha256 of its bytes. Line endings are
 * normalised to LF before hashing, because the same message reads back with CRLF over IMAP and with
 * LF from a Maildir or mbox file; without that a report moved between stores would count twice. The
 * key is never computed another way (every stored message would count again); copies that differ in
 * more than line ends are caught by the body key.
 */
export function messageKey(raw: Buffer): { key: string; sha256: string; messageId: string | null } {
  const hash = createHash('sha256');
  hashNormalised(hash, raw);
  const sha256 = hash.digest('hex');
  const messageId = readMessageId(raw);
  return { key: keyOf(messageId, sha256), sha256, messageId };
}

/** The header fields that say what a message is (who sent it, about what, how its body is built): part
 * of the body key, so a copy repaired in one of them, or a look-alike from another sender, is not
 * taken for another delivery of a stored message. */
const IDENTITY_FIELDS = /^(from|subject|mime-version|content-type|content-transfer-encoding)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)/gim;

/**
 * The message's Message-ID with the sha256 of its identity headers and its body (after the header
 * block; line ends normalised, and a missing final line end added, as an mbox's last message or an
 * .eml file may lack it): the same for every delivery of one message, whatever trace headers each
 * delivery added (Received, Delivered-To, Return-Path…). Null without a Message-ID.
 */
export function bodyKeyOf(raw: Buffer, messageId: string | null): string | null {
  if (!messageId) return null;
  const [headerEnd, bodyStart] = splitHeaderBlock(raw);
  const hash = createHash('sha256');
  const head = raw.toString('latin1', 0, Math.min(headerEnd, 256 * 1024));
  for (const m of head.matchAll(IDENTITY_FIELDS)) hash.update(`${m[1]!.toLowerCase()}:${m[2]!.replace(/\s+/g, ' ').trim()}\n`);
  hash.update('\n');
  const body = raw.subarray(bodyStart);
  hashNormalised(hash, body);
  endLine(hash, body[body.length - 1]);
  return `${messageId}|body:${hash.digest('hex')}`;
}

export function keyOf(messageId: string | null, sha256: string): string {
  return `${messageId ?? '<no-message-id>'}|${sha256}`;
}

/** After the last byte of a message: a message that does not end with LF is hashed as if it did. */
function endLine(hash: Hash, lastByte: number | undefined): void {
  if (lastByte !== undefined && lastByte !== 0x0a) hash.update('\n');
}

/** Feed bytes to a hash with every CRLF replaced by LF. Through a Latin-1 string (one character per
 * byte, so the bytes come back unchanged): three native passes, where a hash update per line (mail over
 * IMAP has CRLF on every line) took twice as long. */
export function hashNormalised(hash: Hash, raw: Buffer): void {
  const text = raw.toString('latin1');
  if (!text.includes('\r\n')) hash.update(raw);
  else hash.update(text.replaceAll('\r\n', '\n'), 'latin1');
}

/** The Message-ID header of the message itself (not of an embedded one), trimmed, at most 998 chars. */
export function readMessageId(raw: Buffer): string | null {
  const [end] = splitHeaderBlock(raw);
  const head = raw.toString('utf8', 0, Math.min(end, 256 * 1024));
  const value = MESSAGE_ID.exec(head)?.[1];
  if (!value) return null;
  // No whitespace and no NUL (PostgreSQL text refuses it): the key must store exactly as computed.
  const trimmed = value.replace(/[\s\u0000]+/g, '').slice(0, 998);
  return trimmed.length > 0 ? trimmed : null;
}
