import { createHash } from 'node:crypto';
import { utcDay } from '../../lib/clock.js';
import { parseMailDate } from '../mailbox/mail-date.js';
import {
  clipHeaderValue,
  DEFAULT_MIME_LIMITS,
  decodeBody,
  decodeEncodedWords,
  domainOf,
  extractAddress,
  header,
  headerText,
  isEmbeddedMessageType,
  parseHeaderBlock,
  parseMime,
  walkParts,
  type HeaderMap,
  type MimePart,
  type ParsedMessage,
} from '../mailbox/mime.js';
import { deriveSourceIp, type IpOrigin, type KnownIpMatcher } from './derive-source-ip.js';

/**
 * A complaint report, parsed: a pure function from the raw message to exactly one of `arf`,
 * `jmrp_legacy`, `not_a_report` or `malformed`. Reports are hostile input: field names live in Maps and
 * null-prototype objects, values stay text, MIME depth and part counts are capped, and nothing throws.
 */

export type ReportFormat = 'arf' | 'jmrp_legacy';
export type TimeOrigin = 'arrival_date' | 'received' | 'report_date' | 'mailbox';

/** Fields of a report part (or an original's headers) that carry a complainer's address (personal data). */
export const RECIPIENT_FIELDS = ['original-rcpt-to', 'original-recipient', 'removal-recipient', 'redacted-address', 'x-hmxmroriginalrecipient'];

/** Every recipient value a parsed report holds: its recipients and its recipient fields. */
export function reportRecipients(report: Pick<FeedbackReport, 'recipients' | 'fields'>): string[] {
  const values = [...report.recipients];
  for (const name of RECIPIENT_FIELDS) {
    const value = report.fields[name];
    // One at a time: push(...array) passes every value as an argument, and overflows the stack past
    // about 125,000 of them (a hostile report repeating Original-Rcpt-To).
    if (Array.isArray(value)) for (const v of value) values.push(v);
    else if (value !== undefined) values.push(value);
  }
  return values;
}

/** A complaint report names one complainer (a few at most): one naming more distinct addresses in its
 * recipient fields is no complaint report but a list (or hostile), and is `malformed`. The cap also
 * bounds the work of hashing the addresses out of the kept bytes and every stored text, which grows
 * with their number times the message's length (protect-raw.ts, store-reports.ts, contentKeyOf): at
 * 100 addresses a hostile 10 MB message still took 7 s, at 10 under one. */
export const MAX_REPORT_ADDRESSES = 10;

/** Recipient field values (the same address repeated) past which a message is no complaint report either:
 * each is stored, hashed, in the report's fields. */
export const MAX_REPORT_RECIPIENT_VALUES = 100;

/** Every way a complainer's address is spelled in mail, lower-cased: as is; as the local part of a VERP
 * return path (`bounce-77-jane=isp.example@sender.example`), which senders use to tell which recipient a
 * bounce or a report is about; and with the @ escaped for a URL or HTML (`%40`, `&#64;`, `&#x40;`,
 * `&commat;`), as unsubscribe links carry it. */
export function addressSpellings(address: string): string[] {
  const lower = address.toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at <= 0) return [lower];
  const local = lower.slice(0, at);
  const domain = lower.slice(at + 1);
  return [lower, `${local}=${domain}`, ...['%40', '&#64;', '&#x40;', '&commat;'].map((escaped) => `${local}${escaped}${domain}`)];
}

/** Feedback types that are complaints; auth-failure, not-spam, opt-out… are recorded but not counted. */
export const COMPLAINT_TYPES: ReadonlySet<string> = new Set(['abuse', 'fraud', 'virus', 'other']);

export interface FeedbackReport {
  format: ReportFormat;
  /** Lower-cased Feedback-Type (`abuse` for legacy JMRP). */
  feedbackType: string | null;
  isComplaint: boolean;
  userAgent: string | null;
  version: string | null;
  sourceIp: string | null;
  sourceIpOrigin: IpOrigin | null;
  complainedAt: Date | null;
  complainedAtOrigin: TimeOrigin | null;
  /** UTC date of complainedAt. */
  day: string | null;
  incidents: number;
  reportedDomain: string | null;
  originalMailFrom: string | null;
  originalFromDomain: string | null;
  originalMessageId: string | null;
  originalSubject: string | null;
  campaign: string | null;
  /** Complainers' addresses in plain text: the loader hashes or drops them before storing. */
  recipients: string[];
  /** Every field of the feedback-report part, names lower-cased, repeated fields as arrays. */
  fields: Record<string, string | string[]>;
  /** Whether the original's headers were there (false when redacted or missing). */
  hasOriginalHeaders: boolean;
  /** The report message's own Message-ID (also when the report arrives forwarded as an attachment). */
  reportMessageId: string | null;
  /** What the report says, whatever carried it (contentKeyOf): the same for a report forwarded from
   * Outlook, whose own headers are lost. Null when it could not tell two complaints apart. */
  contentKey: string | null;
  notes: string[];
}

export type ParsedReport =
  | { kind: 'arf' | 'jmrp_legacy'; report: FeedbackReport }
  | { kind: 'not_a_report'; reason: string }
  | { kind: 'malformed'; reason: string };

export interface ParseReportOptions {
  /** First present header of the original names the campaign (config jmrp.campaignHeaders). */
  campaignHeaders?: readonly string[];
  /** Our sending IPs: preferred when the sending IP has to be derived. */
  isKnownIp?: KnownIpMatcher;
  /** How a complainer's address reads in the content key (contentKeyOf): the loader's salted hash.
   * Absent: the address itself. */
  recipientToken?: (address: string) => string;
  /** When the mailbox received the message: the complaint time of last resort. */
  deliveredAt?: Date | null;
  /** When the message is read (the caller's clock; the parser has none): a complaint time more than
   * a day after it, or after the report's own Date, is not used. */
  readAt?: Date;
  maxDepth?: number;
  /** The MIME tree of these same bytes when the caller already parsed it (the ingest shares one tree
   * between the parser and protect-raw.ts); maxDepth is then the caller's. */
  mime?: ParsedMessage;
}

export const DEFAULT_CAMPAIGN_HEADERS = ['X-Campaign-ID', 'Feedback-ID', 'CFBL-Feedback-ID', 'List-Id'] as const;

const MAX_FIELDS = 200;
const MAX_VALUE = 4000;
const LEGACY_SENDER = 'staff@hotmail.com';
const LEGACY_SUBJECT = /complaint about message from\s+\[?[0-9a-f.:]+/i;
const ORIGINAL_HEADER_TYPES = new Set(['text/rfc822-headers', 'text/rfc822-header', 'message/rfc822-headers', 'message/rfc822-header', 'text/rfc-822-headers']);

export function parseReport(raw: Buffer, options: ParseReportOptions = {}): ParsedReport {
  try {
    return parseUnsafe(raw, options);
  } catch (error) {
    // A bug on hostile input must not stop a mailbox: the message is quarantined with the reason.
    return { kind: 'malformed', reason: `parser error: ${(error as Error)?.message ?? String(error)}`.slice(0, 500) };
  }
}

function parseUnsafe(raw: Buffer, options: ParseReportOptions): ParsedReport {
  if (raw.length === 0) return { kind: 'malformed', reason: 'empty message' };
  if (holdsSeveralMessages(raw)) {
    return { kind: 'malformed', reason: 'several messages in one (an mbox read as one message?): read the file as an mbox (--mbox), where each report counts' };
  }
  const mime = options.mime ?? parseMime(raw, { ...DEFAULT_MIME_LIMITS, maxDepth: options.maxDepth ?? DEFAULT_MIME_LIMITS.maxDepth });
  if (mime.headerless) return { kind: 'malformed', reason: 'no header fields: not a mail message' };
  const root = mime.root;

  const found = findReportParts(root);
  if (found.length > 1) {
    // One message is one report (one row, one key). Counting only the first would lose the others
    // silently; quarantined, the message waits whole for a person to forward its reports one by one.
    return { kind: 'malformed', reason: `${found.length} feedback reports in one message (a digest, or several forwarded at once): repwatch reads one report per message; forward them one by one` };
  }
  const located = found[0];
  if (located) return parseArf(located.message, located.part, located.parent, options, mime.problems);

  const legacy = findLegacy(root);
  if (legacy && 'original' in legacy) return parseLegacy(legacy, options);

  const tooDeep = mime.problems.find((p) => p.startsWith('MIME nesting deeper') || p.startsWith('more than'));
  if (tooDeep) return { kind: 'malformed', reason: tooDeep };
  if (root.contentType === 'multipart/report' && (root.params['report-type'] ?? '').toLowerCase() === 'feedback-report') {
    return { kind: 'malformed', reason: `feedback-report message without a message/feedback-report part${mime.problems.length ? ` (${mime.problems.join('; ')})` : ''}` };
  }
  if (legacy) return { kind: 'not_a_report', reason: legacy.unverified };
  return { kind: 'not_a_report', reason: 'no message/feedback-report part and not a legacy JMRP report' };
}

/** The feedback-report parts anywhere in the tree (forwarded reports nest them), breadth first, each
 * with its parent and the headers of the message that holds it (the report's own, not a forwarder's). */
function findReportParts(root: MimePart): { part: MimePart; parent: MimePart | null; message: HeaderMap }[] {
  const found: { part: MimePart; parent: MimePart | null; message: HeaderMap }[] = [];
  const queue: [MimePart, MimePart | null, HeaderMap][] = [[root, null, root.headers]];
  for (let i = 0; i < queue.length; i++) {
    const [part, parent, message] = queue[i]!;
    if (part.contentType === 'message/feedback-report') found.push({ part, parent, message });
    for (const child of part.children) queue.push([child, part, message]);
    if (part.embedded) queue.push([part.embedded, part, part.embedded.headers]);
  }
  return found;
}

/** The original's headers next to the report part: message/rfc822 (or a variant), text/rfc822-headers
 * (or a variant). A body that is only `REDACTED` gives no headers, which is normal. */
function originalHeadersNear(parent: MimePart | null, report: MimePart): { headers: HeaderMap | null; note?: string } {
  const siblings = parent ? parent.children.filter((c) => c !== report) : [];
  for (const part of siblings) {
    if (isEmbeddedMessageType(part.contentType) && part.embedded) {
      return part.embedded.headers.size > 0 ? { headers: part.embedded.headers } : { headers: null, note: 'original message redacted' };
    }
    if (ORIGINAL_HEADER_TYPES.has(part.contentType)) {
      const { headers } = parseHeaderBlock(headerText(decodeBody(part)));
      return headers.size > 0 ? { headers } : { headers: null, note: 'original headers redacted' };
    }
  }
  return { headers: null, note: 'no original message or headers part' };
}

function parseArf(message: HeaderMap, reportPart: MimePart, parent: MimePart | null, options: ParseReportOptions, problems: string[]): ParsedReport {
  const { headers: fieldMap, badLines } = parseHeaderBlock(headerText(decodeBody(reportPart)));
  const feedbackType = first(fieldMap, 'feedback-type')?.toLowerCase() ?? null;
  if (!feedbackType) {
    return { kind: 'malformed', reason: `message/feedback-report part without a Feedback-Type field${badLines ? ` (${badLines} unreadable line(s))` : ''}` };
  }
  const notes = [...problems];
  if (badLines) notes.push(`${badLines} unreadable line(s) in the feedback-report part`);
  const original = originalHeadersNear(parent, reportPart);
  if (original.note) notes.push(original.note);
  const crowd = tooManyRecipients([fieldMap, original.headers]);
  if (crowd) return { kind: 'malformed', reason: crowd };

  const incidentsText = first(fieldMap, 'incidents');
  let incidents = 1;
  if (incidentsText !== undefined) {
    const n = Number.parseInt(incidentsText, 10);
    if (Number.isFinite(n) && n >= 1 && /^\s*\d+\s*$/.test(incidentsText)) incidents = Math.min(n, 1_000_000);
    else notes.push(`Incidents "${incidentsText.slice(0, 40)}" is not a positive count; counted as 1`);
  }

  const ip = deriveSourceIp({ reported: first(fieldMap, 'source-ip'), original: original.headers, legacy: false, isKnownIp: options.isKnownIp });
  // Received-Date is the old name of Arrival-Date; either may be present but empty or unreadable.
  const arrivalText = first(fieldMap, 'arrival-date');
  const arrival = parseMailDate(arrivalText) ?? parseMailDate(first(fieldMap, 'received-date'));
  if (arrivalText?.trim() && !parseMailDate(arrivalText)) notes.push(`Arrival-Date "${arrivalText.trim().slice(0, 60)}" is not a date`);
  const { notes: timeNotes, ...time } = complaintTime(arrival, ip?.receivedAt ?? null, message, options.deliveredAt, options.readAt);
  notes.push(...timeNotes);
  // Original-Rcpt-To first (the recipient column takes the first); some reporters name the complainer
  // only in Original-Recipient (`rfc822;jane@…`) or, for an opt-out, Removal-Recipient.
  const recipients = [
    ...(fieldMap.get('original-rcpt-to') ?? []),
    ...(original.headers?.get('x-hmxmroriginalrecipient') ?? []),
    ...(fieldMap.get('original-recipient') ?? []),
    ...(fieldMap.get('removal-recipient') ?? []),
  ]
    .map((r) => extractAddress(r) ?? r.trim())
    .filter((r) => r.length > 0);

  return {
    kind: 'arf',
    report: {
      format: 'arf',
      feedbackType,
      isComplaint: COMPLAINT_TYPES.has(feedbackType),
      userAgent: clip(first(fieldMap, 'user-agent')),
      version: clip(first(fieldMap, 'version')),
      sourceIp: ip?.ip ?? null,
      sourceIpOrigin: ip?.origin ?? null,
      ...time,
      incidents,
      reportedDomain: clip(first(fieldMap, 'reported-domain')?.toLowerCase()),
      originalMailFrom: clip(stripAngles(first(fieldMap, 'original-mail-from'))),
      ...originalFacts(original.headers, options),
      recipients,
      fields: fieldsObject(fieldMap),
      hasOriginalHeaders: original.headers !== null,
      reportMessageId: messageIdOf(message),
      contentKey: contentKeyOf(fieldMap, original.headers, options.recipientToken),
      notes,
    },
  };
}

/**
 * Legacy JMRP: a message from staff@hotmail.com that carries an embedded original with
 * X-HmXmrOriginalRecipient, or has the `complaint about message from <IP>` subject. The report may
 * itself be forwarded as an attachment: then the sender that counts is the embedded report's, not
 * the forwarder's. An original with X-HmXmrOriginalRecipient in a message from anyone else is not
 * counted (anyone can paste one): `unverified` says why.
 */
function findLegacy(root: MimePart): { original: HeaderMap | null; report: HeaderMap } | { unverified: string } | null {
  const fromStaff = (message: HeaderMap) => extractAddress(header(message, 'from'))?.toLowerCase() === LEGACY_SENDER;
  let unverified: string | null = null;
  const stack: [MimePart, HeaderMap][] = [[root, root.headers]];
  while (stack.length > 0) {
    const [part, message] = stack.pop()!;
    if (part.embedded) {
      if (part.embedded.headers.has('x-hmxmroriginalrecipient')) {
        if (fromStaff(message)) return { original: part.embedded.headers, report: message };
        unverified ??= `an embedded original carries X-HmXmrOriginalRecipient, but the message holding it is not from ${LEGACY_SENDER}: not counted as a complaint`;
      }
      stack.push([part.embedded, part.embedded.headers]);
    }
    for (const child of part.children) stack.push([child, message]);
  }
  // The subject form: the report message itself (the top one, or one forwarded as an attachment).
  const messages = [root, ...[...walkParts(root)].flatMap((part) => (part.embedded ? [part.embedded] : []))];
  for (const message of messages) {
    if (fromStaff(message.headers) && LEGACY_SUBJECT.test(header(message.headers, 'subject') ?? '')) {
      return { original: firstEmbeddedIn(message), report: message.headers };
    }
  }
  return unverified ? { unverified } : null;
}

/** The headers of the first message embedded below a part (the original of a legacy report). */
function firstEmbeddedIn(part: MimePart): HeaderMap | null {
  const queue: MimePart[] = [part];
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (next.embedded) return next.embedded.headers;
    queue.push(...next.children);
  }
  return null;
}

function parseLegacy(legacy: { original: HeaderMap | null; report: HeaderMap }, options: ParseReportOptions): ParsedReport {
  // Only the IP at the subject's start is read from it.
  const subject = decodeEncodedWords(clipHeaderValue(header(legacy.report, 'subject') ?? ''));
  const original = legacy.original && legacy.original.size > 0 ? legacy.original : null;
  const crowd = tooManyRecipients([original]);
  if (crowd) return { kind: 'malformed', reason: crowd };
  const ip = deriveSourceIp({ original, subject, legacy: true, isKnownIp: options.isKnownIp });
  const { notes: timeNotes, ...time } = complaintTime(null, ip?.receivedAt ?? null, legacy.report, options.deliveredAt, options.readAt);
  const recipients = (original?.get('x-hmxmroriginalrecipient') ?? []).map((r) => extractAddress(r) ?? r.trim()).filter((r) => r.length > 0);
  const fields = Object.create(null) as Record<string, string | string[]>;
  for (const name of ['x-reporter-ip', 'x-sid-pra', 'x-auth-result', 'x-sid-result', 'authentication-results']) {
    const values = original?.get(name);
    if (values?.length) fields[name] = values.length === 1 ? fieldValue(values[0]!) : values.map(fieldValue);
  }
  return {
    kind: 'jmrp_legacy',
    report: {
      format: 'jmrp_legacy',
      feedbackType: 'abuse',
      isComplaint: true,
      userAgent: null,
      version: null,
      sourceIp: ip?.ip ?? null,
      sourceIpOrigin: ip?.origin ?? null,
      ...time,
      incidents: 1,
      reportedDomain: null,
      originalMailFrom: clip(stripAngles(original ? header(original, 'return-path') : undefined)),
      ...originalFacts(original, options),
      recipients,
      fields,
      hasOriginalHeaders: original !== null,
      reportMessageId: messageIdOf(legacy.report),
      contentKey: contentKeyOf(null, original, options.recipientToken),
      notes: [...(original ? [] : ['legacy report without the original message']), ...timeNotes],
    },
  };
}

/** How far a complaint's time may lie after the report was sent or read (clocks disagree). */
const CLOCK_SKEW_MS = 24 * 3600 * 1000;

/** Arrival-Date; else the date of the Received header that carried the sending IP; else the report
 * message's own Date; else when the mailbox received it. A time more than a day after the report was
 * sent (its Date) or read (`readAt`) is a wrong clock or a forged field: it is not used, with a note,
 * because one such report would put a complaint, and the decisions of its days, in the future. (The
 * mailbox's own time is no bound: an mbox From_ line may carry any date.) */
function complaintTime(
  arrival: Date | null,
  receivedAt: Date | null,
  report: HeaderMap,
  deliveredAt: Date | null | undefined,
  readAt: Date | undefined,
): Pick<FeedbackReport, 'complainedAt' | 'complainedAtOrigin' | 'day'> & { notes: string[] } {
  const notes: string[] = [];
  const readTime = readAt && !Number.isNaN(readAt.getTime()) ? readAt.getTime() : Infinity;
  const parsedDate = parseMailDate(header(report, 'date'));
  // A report Date after it was read says nothing; it is no bound and no complaint time either.
  const reportDate = parsedDate && parsedDate.getTime() <= readTime + CLOCK_SKEW_MS ? parsedDate : null;
  if (parsedDate && !reportDate) notes.push(`the report's Date ${parsedDate.toISOString()} is after it was read: not used`);
  const bound = Math.min(reportDate ? reportDate.getTime() : Infinity, readTime) + CLOCK_SKEW_MS;
  const usable = (at: Date | null, what: string): at is Date => {
    if (!at) return false;
    if (at.getTime() <= bound) return true;
    notes.push(`${what} ${at.toISOString()} is more than a day after the report was ${reportDate && reportDate.getTime() <= readTime ? 'sent' : 'read'}: not used`);
    return false;
  };
  const pick = (at: Date, origin: TimeOrigin) => ({ complainedAt: at, complainedAtOrigin: origin, day: utcDay(at), notes });
  if (usable(arrival, 'Arrival-Date')) return pick(arrival, 'arrival_date');
  if (usable(receivedAt, 'the Received date of the sending hop')) return pick(receivedAt, 'received');
  if (reportDate) return pick(reportDate, 'report_date');
  const mailbox = deliveredAt && !Number.isNaN(deliveredAt.getTime()) ? deliveredAt : null;
  if (mailbox && mailbox.getTime() <= readTime + CLOCK_SKEW_MS) return pick(mailbox, 'mailbox');
  if (mailbox) notes.push(`the mailbox's date ${mailbox.toISOString()} is after the message was read: not used`);
  return { complainedAt: null, complainedAtOrigin: null, day: null, notes };
}

function originalFacts(original: HeaderMap | null, options: ParseReportOptions): Pick<FeedbackReport, 'originalFromDomain' | 'originalMessageId' | 'originalSubject' | 'campaign'> {
  if (!original) return { originalFromDomain: null, originalMessageId: null, originalSubject: null, campaign: null };
  let campaign: string | null = null;
  for (const name of options.campaignHeaders ?? DEFAULT_CAMPAIGN_HEADERS) {
    const found = header(original, name);
    const value = found === undefined ? undefined : clipHeaderValue(found).trim();
    if (value) {
      campaign = clip(value, 500);
      break;
    }
  }
  const subject = header(original, 'subject');
  return {
    originalFromDomain: domainOf(extractAddress(header(original, 'from'))),
    originalMessageId: messageIdOf(original),
    // Decoded from its start only: 64 KB of encoded words give more than the 1000 characters kept.
    originalSubject: subject ? clip(decodeEncodedWords(clipHeaderValue(subject)), 1000) : null,
    campaign,
  };
}

/**
 * The sha256 of a report's feedback fields and its original's header fields, canonical (in their order,
 * values unfolded, lower-cased), each complainer's address read as `recipientToken` gives it. The loader
 * gives the salted hash that also stands for the address in the bytes it keeps, so a report read again
 * from them has the same key (with `jmrp.recipients: drop` the kept bytes lose the address, and the key
 * read from them differs), and the key is no digest an address could be checked against. Null unless
 * the original carries a Received line: a 2026 report part is three constant fields, and a redacted
 * original tells nothing apart either.
 */
function contentKeyOf(fields: HeaderMap | null, original: HeaderMap | null, recipientToken: ((address: string) => string) | undefined): string | null {
  if (!original?.has('received')) return null;
  const addresses = new Set<string>();
  for (const map of [fields, original]) {
    for (const name of RECIPIENT_FIELDS) {
      for (const value of map?.get(name) ?? []) {
        const address = extractAddress(value);
        if (address) addresses.add(address.toLowerCase());
      }
    }
  }
  let text = `${canonicalFields(fields)}\n\n${canonicalFields(original)}`.toLowerCase();
  if (recipientToken) {
    // Every spelling, as protect-raw.ts rewrites every spelling in the kept bytes: the key read again
    // from them must be the key of the bytes as received.
    // Each spelling once (the first address to spell it wins, as the first replacement did before).
    const forms = new Map<string, string>();
    for (const address of addresses) {
      const token = recipientToken(address);
      for (const form of addressSpellings(address)) if (!forms.has(form)) forms.set(form, token);
    }
    // Most spellings are absent: look before splitting (the same text either way).
    for (const [form, token] of [...forms].sort((a, b) => b[0].length - a[0].length)) if (text.includes(form)) text = text.split(form).join(token);
  }
  return `content:${createHash('sha256').update(text).digest('hex')}`;
}

/** The Message-ID without its folding whitespace, at most 998 characters (a line's limit). */
function messageIdOf(headers: HeaderMap): string | null {
  const value = header(headers, 'message-id');
  return value === undefined ? null : clip(clipHeaderValue(value).replace(/\s+/g, ''), 998);
}

/** Why these recipient fields (of the report part and the original) are not one complaint report's, or
 * null: more distinct addresses than MAX_REPORT_ADDRESSES, or more values than MAX_REPORT_RECIPIENT_VALUES. */
function tooManyRecipients(maps: (HeaderMap | null)[]): string | null {
  let values = 0;
  const distinct = new Set<string>();
  for (const map of maps) {
    for (const name of RECIPIENT_FIELDS) {
      for (const value of map?.get(name) ?? []) {
        values += 1;
        distinct.add((extractAddress(value) ?? value.trim()).toLowerCase());
      }
    }
  }
  if (distinct.size > MAX_REPORT_ADDRESSES) return `${distinct.size} distinct recipient addresses: not one complaint report`;
  if (values > MAX_REPORT_RECIPIENT_VALUES) return `${values} recipient fields (${distinct.size} distinct address${distinct.size === 1 ? '' : 'es'}): not one complaint report`;
  return null;
}

function canonicalFields(map: HeaderMap | null): string {
  // Header order is kept by every carrier; values come unfolded and trimmed (parseHeaderBlock), the
  // same from CRLF and LF copies.
  let out = '';
  if (map) for (const [name, values] of map) out += `${name}:${values.join('\u0001')}\n`;
  return out;
}

/** An mbox From_ line (`From sender … 2026`) opening the bytes and another one after a blank line:
 * several messages in one, each report but the first would be lost. */
export function holdsSeveralMessages(raw: Buffer): boolean {
  if (raw.length < 5 || raw.toString('latin1', 0, 5) !== 'From ') return false;
  const firstLine = raw.toString('latin1', 0, Math.min(raw.length, 1000)).split('\n', 1)[0]!;
  if (!FROM_LINE.test(firstLine)) return false;
  for (let at = raw.indexOf('\nFrom ', 0, 'latin1'); at !== -1; at = raw.indexOf('\nFrom ', at + 1, 'latin1')) {
    const blankBefore = raw[at - 1] === 0x0a || (raw[at - 1] === 0x0d && raw[at - 2] === 0x0a);
    if (!blankBefore) continue;
    // A message starts there only if a header field follows the From_ line ("From March 2026 on, …" in
    // a body is a paragraph).
    const [fromLine, next = ''] = raw.toString('latin1', at + 1, Math.min(raw.length, at + 2000)).split('\n', 2);
    if (FROM_LINE.test(fromLine!) && HEADER_FIELD.test(next)) return true;
  }
  return false;
}

/** A header field's first line: a name of printable characters but the colon, then a colon. */
const HEADER_FIELD = /^[!-9;-~]+[ \t]*:/;

/** `From <sender> <date>` as mbox files start each message (as in mbox-source.ts). */
const FROM_LINE = /^From \S+[ \t].*(?<!\d)\d{4}(?!\d)/;

function first(map: HeaderMap, name: string): string | undefined {
  return map.get(name)?.[0];
}

function clip(value: string | undefined | null, max = MAX_VALUE): string | null {
  if (value === undefined || value === null) return null;
  const trimmed = value.trim();
  if (trimmed.length === 0) return null;
  return cut(trimmed, max);
}

function stripAngles(value: string | undefined): string | undefined {
  return value?.trim().replace(/^<|>$/g, '');
}

function fieldValue(value: string): string {
  return cut(value, MAX_VALUE);
}

/** At most `max` UTF-16 units, never cutting between the two halves of a surrogate pair (an emoji at
 * the limit would leave a lone half, which PostgreSQL's jsonb refuses). */
function cut(value: string, max: number): string {
  if (value.length <= max) return value;
  const code = value.charCodeAt(max - 1);
  return value.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** ARF fields as a null-prototype object for jsonb: a field called `__proto__` is just a key. */
function fieldsObject(map: HeaderMap): Record<string, string | string[]> {
  const out = Object.create(null) as Record<string, string | string[]>;
  let count = 0;
  for (const [name, values] of map) {
    if (count++ >= MAX_FIELDS) break;
    const clipped = values.map(fieldValue);
    out[cut(name, 200)] = clipped.length === 1 ? clipped[0]! : clipped;
  }
  return out;
}
