import ipaddr from 'ipaddr.js';
import { decodeBody, decodeEncodedWords, domainOf, extractAddress, header, headerText, parseHeaderBlock, parseMime, splitHeaderBlock, walkParts, type HeaderMap, type MimePart } from '../mailbox/mime.js';
import { parseMailDate } from '../mailbox/mail-date.js';
import { codesByRule, findMicrosoftCodes, joinCodes, strongestEvidence, type CodeMatch } from './microsoft-codes.js';

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
  | {
      kind: 'bounce';
      format: 'dsn' | 'plain';
      senderDomain: string | null;
      recipients: BounceRecipient[];
      /** Recipient groups of a DSN past MAX_RECIPIENT_GROUPS: counted, not read (0 for plain bounces). */
      groupsNotRead: number;
      problems: string[];
    }
  | { kind: 'not_a_bounce'; reason: string }
  | { kind: 'malformed'; reason: string };

export interface ParseBounceOptions {
  /** When the mailbox received the message: the last fallback for the time. */
  deliveredAt?: Date | null;
}

const MAX_DIAGNOSTIC = 4000;
/** Recipient groups read from one DSN. A real NDR has a handful; a 10 MB message can hold 600,000
 * (`Action: failed` and a blank line), each one a row and a scan of its own. */
export const MAX_RECIPIENT_GROUPS = 1000;

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
    const { recipients, groupsNotRead } = parseDeliveryStatus(decodeBody(statusPart).toString('utf8'), humanText, fallbackTime);
    if (recipients.length === 0) return { kind: 'malformed', reason: 'delivery-status part without a recipient block' };
    const problems = groupsNotRead > 0 ? [...parsed.problems, groupsNotReadProblem(groupsNotRead)] : parsed.problems;
    return { kind: 'bounce', format: 'dsn', senderDomain, recipients, groupsNotRead, problems };
  }

  if (!looksLikePlainBounce(root.headers, humanText)) {
    return { kind: 'not_a_bounce', reason: root.contentType === 'multipart/report' ? `report of type ${root.params['report-type'] ?? 'unknown'}` : 'no delivery-status part and no bounce text' };
  }
  const marker = originalMarker(humanText);
  const recipients = parsePlainBounce(humanText, marker, fallbackTime);
  if (recipients.length === 0) return { kind: 'malformed', reason: 'bounce text without an SMTP reply' };
  return { kind: 'bounce', format: 'plain', senderDomain: senderDomain ?? quotedOriginalSender(humanText, marker), recipients, groupsNotRead: 0, problems: parsed.problems };
}

/** The note a DSN cut at MAX_RECIPIENT_GROUPS carries (in problems, and in the classification reason). */
export function groupsNotReadProblem(count: number): string {
  return `${count} recipient group(s) after the first ${MAX_RECIPIENT_GROUPS} not read`;
}

// --- DSN ------------------------------------------------------------------------------------------

function parseDeliveryStatus(text: string, humanText: string, fallbackTime: Timed | null): { recipients: BounceRecipient[]; groupsNotRead: number } {
  const groups: string[] = [];
  let groupsNotRead = 0;
  // The per-message group and up to MAX_RECIPIENT_GROUPS recipient groups; the rest only counted.
  for (const group of statusGroups(text)) {
    if (groups.length <= MAX_RECIPIENT_GROUPS) groups.push(group);
    else groupsNotRead++;
  }
  if (groups.length === 0) return { recipients: [], groupsNotRead };
  const perMessage = parseHeaderBlock(groups[0]!).headers;
  // A DSN whose first group already is a recipient group (no per-message fields) still counts.
  const recipientGroups = groups.slice(1).map((g) => parseHeaderBlock(g).headers);
  if (recipientGroups.length === 0 && (perMessage.has('final-recipient') || perMessage.has('status'))) recipientGroups.push(perMessage);
  const arrival = parseMailDate(header(perMessage, 'arrival-date'));
  // What every group falls back on (the per-message fields, the human-readable text) is read once
  // here, not once per group: that was a rescan of up to 200 KB per group. Only the exclusions (the
  // group's Remote-MTA) differ from group to group, and they are applied to the candidates read once.
  const perMessageIps = once(() => ownIpCandidates(ipFieldValues(perMessage)));
  const humanIps = once(() => ownIpCandidates([humanText]));
  const humanCodes = once(() => codesByRule(humanText));

  const recipients = recipientGroups.map((fields, seq) => {
    const diagnostic = cleanDiagnostic(header(fields, 'diagnostic-code') ?? null);
    const remote = remoteMtaIps(header(fields, 'remote-mta'));
    const status = header(fields, 'status')?.match(/[245]\.\d{1,3}\.\d{1,3}/)?.[0] ?? null;
    // Exchange puts the full text only into the human-readable part; scan both.
    const codes = diagnostic ? findMicrosoftCodes(`${diagnostic}\n${status ?? ''}\n`) : joinCodes(codesByRule(status ?? ''), humanCodes());
    const ip =
      pick(firstOwnIp(diagnostic ?? '', remote), 'diagnostic') ??
      pick(firstOwnIp(ipFieldValues(fields), remote) ?? firstNotExcluded(perMessageIps(), remote), 'dsn_field') ??
      pick(firstNotExcluded(humanIps(), remote), 'text');
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
  return { recipients, groupsNotRead };
}

/** The non-blank groups of a delivery-status body (blank-line separated), one at a time: a body of
 * 600,000 groups is counted past the cap without holding them all. */
function* statusGroups(text: string): Generator<string> {
  const separator = /\r?\n[ \t]*\r?\n/g;
  let start = 0;
  for (;;) {
    const m = separator.exec(text);
    const group = text.slice(start, m ? m.index : text.length);
    if (group.trim().length > 0) yield group;
    if (!m) return;
    start = m.index + m[0].length;
  }
}

function once<T>(compute: () => T): () => T {
  let value: { v: T } | null = null;
  return () => (value ??= { v: compute() }).v;
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

/** The values of the extension fields some MTAs add (X-Outbound-IP, X-Source-IP, X-PowerMTA-...-IP,
 * ...), in field order. */
function ipFieldValues(fields: HeaderMap): string[] {
  const out: string[] = [];
  for (const [name, values] of fields) {
    if (!/^x-.*\bip\b|^x-.*-ip$|^x-.*(?:source|outbound|sending|originating).*ip/i.test(name.replace(/_/g, '-'))) continue;
    // One at a time: a spread of a field repeated 500,000 times overflows the stack.
    for (const value of values) out.push(value);
  }
  return out;
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

/** A line where a bounce text starts quoting the original message: everything below is not ours to
 * read. `-- ... copy of the ...` or `... original message headers: ...`. */
const MARKER_PHRASE = /copy of the|original message|undelivered message|below this line|returned message/i;
/** Characters of a line looked at for MARKER_PHRASE: real marker lines are short. */
const MAX_MARKER_LINE = 1000;

interface Marker {
  /** Where the marker line starts, and where it ends (before its line break). */
  start: number;
  end: number;
}

/**
 * The first marker line, looked for line by line. This was one regex, /^(?:-{2,}.*(?:copy of the|...).*|...)$/im:
 * `-{2,}.*` can split a run of dashes in as many ways as it is long, so a line of 100,000 dashes took
 * 6 s and one of 1 MB minutes. Lines end where the regex's did (\n, \r, U+2028, U+2029).
 */
function originalMarker(text: string): Marker | null {
  const lineBreak = /[\n\r\u2028\u2029]/g;
  let start = 0;
  for (;;) {
    const m = lineBreak.exec(text);
    const end = m ? m.index : text.length;
    const line = text.slice(start, Math.min(end, start + MAX_MARKER_LINE));
    if ((line.startsWith('--') && MARKER_PHRASE.test(line.slice(2))) || /original message headers:/i.test(line)) return { start, end };
    if (!m) return null;
    start = end + 1;
  }
}

/** A line that names a failed recipient: `<user@x>:` (Postfix, qmail), an indented bare address
 * (Exim), `user@x` followed by an Exchange-style explanation. */
const RECIPIENT_LINE = /^[ \t]*(?:<([^\s<>@"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>:(.*)|<?([^\s<>@"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?:?[ \t]*(?:\(.*\))?[ \t]*)$/;

function parsePlainBounce(fullText: string, marker: Marker | null, fallbackTime: Timed | null): BounceRecipient[] {
  const text = (marker ? fullText.slice(0, marker.start) : fullText).slice(0, 100_000);
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
function quotedOriginalSender(text: string, marker: Marker | null): string | null {
  if (!marker) return null;
  const rest = text.slice(marker.end).replace(/^\s*\n/, '');
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

/** The public IP literals of texts (each text's IPv4 literals, then its IPv6 ones), in order, that are
 * not Microsoft's; lazily, so the first one found costs a scan only up to it. */
function* ownIps(texts: string | readonly string[]): Generator<string> {
  for (const text of typeof texts === 'string' ? [texts] : texts) {
    for (const m of text.matchAll(IPV4)) {
      const ip = usableIp(m[1]!);
      if (ip) yield ip;
    }
    for (const m of text.matchAll(IPV6)) {
      const ip = usableIp(m[1]!);
      if (ip) yield ip;
    }
  }
}

/** The first of ownIps that is not the remote MTA's. */
function firstOwnIp(texts: string | readonly string[], exclude: Set<string>): string | null {
  return firstNotExcluded(ownIps(texts), exclude);
}

/** Every IP of ownIps, each once: for texts read by many DSN groups, each with its own exclusions
 * (firstNotExcluded), so the texts are scanned once. */
function ownIpCandidates(texts: readonly string[]): string[] {
  return [...new Set(ownIps(texts))];
}

/** The first candidate not excluded (a lazy one is read only up to it). */
function firstNotExcluded(candidates: Iterable<string>, exclude: Set<string>): string | null {
  for (const ip of candidates) if (!exclude.has(ip)) return ip;
  return null;
}

/** The address normalised (IPv4-mapped IPv6 as IPv4) when it is public and not Microsoft's, else null. */
function usableIp(candidate: string): string | null {
  if (!ipaddr.isValid(candidate)) return null;
  let addr = ipaddr.parse(candidate);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  // Documentation ranges (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32) count as public: the demo
  // and the tests use them, and a real receiver never names them.
  if (addr.range() !== 'unicast' && !isDocumentationRange(addr)) return null;
  const normal = addr.toString();
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
