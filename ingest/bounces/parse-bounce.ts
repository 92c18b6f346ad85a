import ipaddr from 'ipaddr.js';
import { decodeBody, decodeEncodedWords, domainOf, extractAddress, header, headerText, parseHeaderBlock, parseMime, splitHeaderBlock, walkParts, type HeaderMap, type MimePart } from '../mailbox/mime.js';
import { parseMailDate } from '../mailbox/mail-date.js';
import { findMicrosoftCodes, strongestEvidence, type CodeMatch } from './microsoft-codes.js';

/**
 * A bounce (non-delivery report) from one of our own MTAs, parsed: a pure function, raw bytes in, one
 * result out. Two shapes: RFC 3464 DSNs (multipart/report; report-type=delivery-status, with a
 * message/delivery-status or message/global-delivery-status part) and plain-text bounces (Postfix,
 * Exim, qmail, Exchange "Undeliverable:" texts without a machine-readable part).
 *
 * For every failed or delayed recipient it extracts Microsoft's codes from the diagnostic text, the IP
 * the receiver named (our sending IP), the recipient's domain (never the local part: personal data),
 * and the time. Unknown or foreign bounces are still bounces: they are kept with no evidence.
 */

export type IpOrigin = 'diagnostic' | 'dsn_field' | 'text';
export type TimeOrigin = 'last_attempt' | 'arrival' | 'date' | 'delivered';

export interface BounceRecipient {
  seq: number;
  recipientDomain: string | null;
  action: string | null;
  smtpCode: number | null;
  enhancedStatus: string | null;
  diagnostic: string | null;
  codes: CodeMatch[];
  evidence: CodeMatch | null;
  ip: string | null;
  ipOrigin: IpOrigin | null;
  bouncedAt: Date | null;
  bouncedAtOrigin: TimeOrigin | null;
  /** UTC date of bouncedAt. */
  day: string | null;
}

export type BounceParseResult =
  | { kind: 'bounce'; format: 'dsn' | 'plain'; senderDomain: string | null; recipients: BounceRecipient[]; problems: string[] }
  | { kind: 'not_a_bounce'; reason: string }
  | { kind: 'malformed'; reason: string };

export interface ParseBounceOptions {
  /** When the mailbox received the message: the last fallback for the time. */
  deliveredAt?: Date | null;
}

const MAX_DIAGNOSTIC = 4000;

export function parseBounce(raw: Buffer, options: ParseBounceOptions = {}): BounceParseResult {
  const parsed = parseMime(raw);
  if (parsed.headerless) return { kind: 'malformed', reason: 'no header block: not a mail message' };
  const root = parsed.root;
  const messageDate = parseMailDate(header(root.headers, 'date'));
  const fallbackTime = messageDate ? { at: messageDate, origin: 'date' as const } : options.deliveredAt ? { at: options.deliveredAt, origin: 'delivered' as const } : null;

  const statusPart = [...walkParts(root)].find((p) => p.contentType === 'message/delivery-status' || p.contentType === 'message/global-delivery-status');
  const humanText = firstText(root);
  const senderDomain = originalSenderDomain(root);

  if (statusPart) {
    const recipients = parseDeliveryStatus(decodeBody(statusPart).toString('utf8'), humanText, fallbackTime);
    if (recipients.length === 0) return { kind: 'malformed', reason: 'delivery-status part without a recipient block' };
    return { kind: 'bounce', format: 'dsn', senderDomain, recipients, problems: parsed.problems };
  }

  if (!looksLikePlainBounce(root.headers, humanText)) {
    return { kind: 'not_a_bounce', reason: root.contentType === 'multipart/report' ? `report of type ${root.params['report-type'] ?? 'unknown'}` : 'no delivery-status part and no bounce text' };
  }
  const recipients = parsePlainBounce(humanText, fallbackTime);
  if (recipients.length === 0) return { kind: 'malformed', reason: 'bounce text without an SMTP reply' };
  return { kind: 'bounce', format: 'plain', senderDomain: senderDomain ?? quotedOriginalSender(humanText), recipients, problems: parsed.problems };
}

// --- DSN ------------------------------------------------------------------------------------------

function parseDeliveryStatus(text: string, humanText: string, fallbackTime: Timed | null): BounceRecipient[] {
  const groups = text.split(/\r?\n[ \t]*\r?\n/).filter((g) => g.trim().length > 0);
  if (groups.length === 0) return [];
  const perMessage = parseHeaderBlock(groups[0]!).headers;
  // A DSN whose first group already is a recipient group (no per-message fields) still counts.
  const recipientGroups = groups.slice(1).map((g) => parseHeaderBlock(g).headers);
  if (recipientGroups.length === 0 && (perMessage.has('final-recipient') || perMessage.has('status'))) recipientGroups.push(perMessage);
  const arrival = parseMailDate(header(perMessage, 'arrival-date'));

  return recipientGroups.map((fields, seq) => {
    const diagnostic = cleanDiagnostic(header(fields, 'diagnostic-code') ?? null);
    const remote = remoteMtaIps(header(fields, 'remote-mta'));
    const status = header(fields, 'status')?.match(/[245]\.\d{1,3}\.\d{1,3}/)?.[0] ?? null;
    // Exchange puts the full text only into the human-readable part; scan both.
    const codes = findMicrosoftCodes(`${diagnostic ?? ''}\n${status ?? ''}\n${diagnostic ? '' : humanText}`);
    const ip =
      pick(firstOwnIp(diagnostic ?? '', remote), 'diagnostic') ??
      pick(ipFromFields(fields, remote) ?? ipFromFields(perMessage, remote), 'dsn_field') ??
      pick(firstOwnIp(humanText, remote), 'text');
    const lastAttempt = parseMailDate(header(fields, 'last-attempt-date'));
    const time: Timed | null = lastAttempt ? { at: lastAttempt, origin: 'last_attempt' } : arrival ? { at: arrival, origin: 'arrival' } : fallbackTime;
    const recipient = extractAddress(stripAddressType(header(fields, 'final-recipient') ?? header(fields, 'original-recipient')));
    return {
      seq,
      recipientDomain: domainOf(recipient),
      action: header(fields, 'action')?.toLowerCase().slice(0, 40) ?? null,
      smtpCode: smtpCodeOf(diagnostic),
      enhancedStatus: status ?? enhancedStatusOf(diagnostic),
      diagnostic,
      codes,
      evidence: strongestEvidence(codes),
      ip: ip?.value ?? null,
      ipOrigin: ip?.origin ?? null,
      bouncedAt: time?.at ?? null,
      bouncedAtOrigin: time?.origin ?? null,
      day: time ? time.at.toISOString().slice(0, 10) : null,
    };
  });
}

/** `rfc822; user@example.com` → `user@example.com`. */
function stripAddressType(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const semi = value.indexOf(';');
  return semi === -1 ? value : value.slice(semi + 1).trim();
}

/** `smtp; 550 5.7.1 ...` → `550 5.7.1 ...`, whitespace collapsed, length capped. */
function cleanDiagnostic(value: string | null): string | null {
  if (!value) return null;
  const text = decodeEncodedWords(value).replace(/^\s*(?:smtp|x-[a-z0-9-]+)\s*;\s*/i, '').replace(/\s+/g, ' ').trim();
  return text.length === 0 ? null : text.slice(0, MAX_DIAGNOSTIC);
}

/** Extension fields some MTAs add (X-Outbound-IP, X-Source-IP, X-PowerMTA-...-IP, ...). */
function ipFromFields(fields: HeaderMap, remote: Set<string>): string | null {
  for (const [name, values] of fields) {
    if (!/^x-.*\bip\b|^x-.*-ip$|^x-.*(?:source|outbound|sending|originating).*ip/i.test(name.replace(/_/g, '-'))) continue;
    for (const value of values) {
      const ip = firstOwnIp(value, remote);
      if (ip) return ip;
    }
  }
  return null;
}

// --- plain-text bounces -----------------------------------------------------------------------------

const BOUNCE_SENDER = /^(?:mailer-daemon|postmaster|mail-daemon|mail delivery (?:system|subsystem))\b/i;
const BOUNCE_SUBJECT = /undeliver|delivery status notification|returned mail|mail delivery failed|failure notice|delivery failure|non[- ]?delivery|could not be delivered|delivery has failed|delayed mail/i;
const SMTP_REPLY = /\b([45]\d\d)(?:[ -]|$)(?:\s*(?:#?)([45]\.\d{1,3}\.\d{1,3})\b)?/;

function looksLikePlainBounce(headers: HeaderMap, text: string): boolean {
  const from = decodeEncodedWords(header(headers, 'from') ?? '');
  const fromLocal = extractAddress(from)?.split('@')[0] ?? from;
  const subject = decodeEncodedWords(header(headers, 'subject') ?? '');
  const fromDaemon = BOUNCE_SENDER.test(fromLocal.trim()) || BOUNCE_SENDER.test(from.trim());
  const bounceSubject = BOUNCE_SUBJECT.test(subject);
  const hasReply = SMTP_REPLY.test(text) || findMicrosoftCodes(text).length > 0;
  return hasReply && (fromDaemon || bounceSubject);
}

/** Where a bounce text starts quoting the original message: everything below is not ours to read. */
const ORIGINAL_MARKER = /^(?:-{2,}.*(?:copy of the|original message|undelivered message|below this line|returned message).*|.*original message headers:.*)$/im;

/** A line that names a failed recipient: `<user@x>:` (Postfix, qmail), an indented bare address
 * (Exim), `user@x` followed by an Exchange-style explanation. */
const RECIPIENT_LINE = /^[ \t]*(?:<([^\s<>@"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>:(.*)|<?([^\s<>@"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?:?[ \t]*(?:\(.*\))?[ \t]*)$/;

function parsePlainBounce(fullText: string, fallbackTime: Timed | null): BounceRecipient[] {
  const cut = ORIGINAL_MARKER.exec(fullText);
  const text = (cut ? fullText.slice(0, cut.index) : fullText).slice(0, 100_000);
  const lines = text.split(/\r?\n/);
  const blocks: { address: string | null; lines: string[] }[] = [];
  let current: { address: string | null; lines: string[] } = { address: null, lines: [] };
  for (const line of lines) {
    const m = RECIPIENT_LINE.exec(line);
    if (m) {
      if (current.address || current.lines.some((l) => SMTP_REPLY.test(l))) blocks.push(current);
      // Postfix and qmail continue on the same line (`<a@b>: host x said: 550 ...`).
      current = { address: (m[1] ?? m[3])!, lines: m[2] ? [m[2]] : [] };
      continue;
    }
    current.lines.push(line);
  }
  blocks.push(current);

  const recipients: BounceRecipient[] = [];
  for (const block of blocks) {
    const body = block.lines.join('\n');
    const reply = replyText(body);
    const codes = findMicrosoftCodes(body);
    if (!reply && codes.length === 0) continue;
    const remote = remoteHostIps(body);
    const ip = pick(firstOwnIp(reply ?? '', remote), 'diagnostic') ?? pick(firstOwnIp(body, remote), 'text');
    recipients.push({
      seq: recipients.length,
      recipientDomain: domainOf(block.address),
      action: /\b4\d\d\b|delayed|will be retried|retrying/i.test(reply ?? body) && !/\b5\d\d\b/.test(reply ?? '') ? 'delayed' : 'failed',
      smtpCode: smtpCodeOf(reply),
      enhancedStatus: enhancedStatusOf(reply),
      diagnostic: reply,
      codes,
      evidence: strongestEvidence(codes),
      ip: ip?.value ?? null,
      ipOrigin: ip?.origin ?? null,
      bouncedAt: fallbackTime?.at ?? null,
      bouncedAtOrigin: fallbackTime?.origin ?? null,
      day: fallbackTime ? fallbackTime.at.toISOString().slice(0, 10) : null,
    });
  }
  return recipients;
}

/** Plain bounces quote the original below a marker line: its From domain. */
function quotedOriginalSender(text: string): string | null {
  const cut = ORIGINAL_MARKER.exec(text);
  if (!cut) return null;
  const rest = text.slice(cut.index + cut[0].length).replace(/^\s*\n/, '');
  const [end] = splitHeaderBlock(Buffer.from(rest.slice(0, 64 * 1024)));
  const headers = parseHeaderBlock(rest.slice(0, end)).headers;
  return domainOf(extractAddress(decodeEncodedWords(header(headers, 'from') ?? '')));
}

/** The server's reply: from the first SMTP reply code (after "said:" when the MTA says who said it)
 * to the end of the block, whitespace collapsed. */
function replyText(body: string): string | null {
  const said = /(?:said|reply was|error from remote mail server[^:]*|Remote host said|Remote Server returned)\s*:?\s*/i.exec(body);
  const from = said ? body.slice(said.index + said[0].length) : body;
  const m = SMTP_REPLY.exec(from) ?? SMTP_REPLY.exec(body);
  if (!m) return null;
  const start = from.includes(m[0]) ? from.indexOf(m[0]) : body.indexOf(m[0]);
  const source = from.includes(m[0]) ? from : body;
  const text = source.slice(start).replace(/\s+/g, ' ').trim();
  return text.slice(0, MAX_DIAGNOSTIC) || null;
}

// --- shared helpers ------------------------------------------------------------------------------------

interface Timed {
  at: Date;
  origin: TimeOrigin;
}

function pick(value: string | null, origin: IpOrigin): { value: string; origin: IpOrigin } | null {
  return value ? { value, origin } : null;
}

function smtpCodeOf(text: string | null): number | null {
  const m = text ? /^\s*([245]\d\d)\b/.exec(text) ?? SMTP_REPLY.exec(text) : null;
  return m ? Number(m[1]) : null;
}

function enhancedStatusOf(text: string | null): string | null {
  return text?.match(/\b[245]\.\d{1,3}\.\d{1,3}\b/)?.[0] ?? null;
}

const IPV4 = /(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.]|\.\d)/g;
const IPV6 = /(?<![0-9a-f:])((?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4})(?![0-9a-f:])/gi;

/**
 * Microsoft's own mail ranges (Exchange Online Protection and Outlook.com inbound): an IP in them is
 * the receiver, never our sender. Kept short on purpose: the remote MTA's own IP is excluded anyway.
 */
const MICROSOFT_RANGES = ['40.92.0.0/15', '40.107.0.0/16', '52.100.0.0/14', '104.47.0.0/17', '2a01:111::/32', '2603:1000::/24', '2603:10b6::/32'].map((c) => ipaddr.parseCIDR(c));

/** The first public IP literal in a text that is not the remote MTA's and not Microsoft's. */
function firstOwnIp(text: string, exclude: Set<string>): string | null {
  for (const m of text.matchAll(IPV4)) {
    const ip = usableIp(m[1]!, exclude);
    if (ip) return ip;
  }
  for (const m of text.matchAll(IPV6)) {
    const ip = usableIp(m[1]!, exclude);
    if (ip) return ip;
  }
  return null;
}

function usableIp(candidate: string, exclude: Set<string>): string | null {
  if (!ipaddr.isValid(candidate)) return null;
  let addr = ipaddr.parse(candidate);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  // Documentation ranges (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32) count as public: the demo
  // and the tests use them, and a real receiver never names them.
  if (addr.range() !== 'unicast' && !isDocumentationRange(addr)) return null;
  const normal = addr.toString();
  if (exclude.has(normal)) return null;
  if (MICROSOFT_RANGES.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits))) return null;
  return normal;
}

const DOCUMENTATION_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'].map((c) => ipaddr.parseCIDR(c));

function isDocumentationRange(addr: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return DOCUMENTATION_RANGES.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

function remoteMtaIps(value: string | undefined): Set<string> {
  const out = new Set<string>();
  if (!value) return out;
  for (const m of value.matchAll(IPV4)) if (ipaddr.isValid(m[1]!)) out.add(ipaddr.parse(m[1]!).toString());
  return out;
}

/** `host mx.example[1.2.3.4] said:` (Postfix, Exim) and qmail's first line: the receiver's IPs. */
function remoteHostIps(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/\bhost\s+[^\s[]+\s*\[([0-9a-f.:]+)\]/gi)) if (ipaddr.isValid(m[1]!)) out.add(ipaddr.parse(m[1]!).toString());
  // qmail: `1.2.3.4 failed after I sent the message.` / `1.2.3.4 does not like recipient.`
  for (const m of text.matchAll(/^(\d{1,3}(?:\.\d{1,3}){3}) (?:failed|does not like)/gm)) if (ipaddr.isValid(m[1]!)) out.add(ipaddr.parse(m[1]!).toString());
  return out;
}

/** The human-readable text: the first text/plain part that is not inside the returned original. */
function firstText(root: MimePart): string {
  const stack: MimePart[] = [root];
  while (stack.length > 0) {
    const part = stack.shift()!;
    if (part.contentType === 'text/plain') return decodeBody(part).toString('utf8').slice(0, 200_000);
    stack.push(...part.children);
  }
  const html = [...walkParts(root)].find((p) => p.contentType === 'text/html' && p.depth <= 2);
  // Cut before stripping, and a tag may not contain '<': with /<[^>]*>/ a body of many '<' and no '>'
  // took time growing with its square (seconds for 100 KB, hours for 10 MB).
  return html ? decodeBody(html).toString('utf8').slice(0, 200_000).replace(/<[^<>]*>/g, ' ').replace(/&nbsp;/g, ' ') : '';
}

/** The From domain of the returned original (message/rfc822 or text/rfc822-headers). */
function originalSenderDomain(root: MimePart): string | null {
  for (const part of walkParts(root)) {
    if (part === root) continue;
    let headers: HeaderMap | null = null;
    if (part.embedded) headers = part.embedded.headers;
    else if (part.contentType === 'text/rfc822-headers' || part.contentType === 'message/rfc822-headers') headers = parseHeaderBlock(headerText(decodeBody(part))).headers;
    if (!headers) continue;
    const domain = domainOf(extractAddress(decodeEncodedWords(header(headers, 'from') ?? '')));
    if (domain) return domain;
  }
  return null;
}
