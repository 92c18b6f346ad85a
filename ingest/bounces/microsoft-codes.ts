/**
 * Microsoft's block and deferral codes as they appear in NDR diagnostic text, what each means, and the
 * block evidence each one is (see docs/delisting.md and ../shared/reference/snds.md). Pure data and a
 * pure scan.
 *
 * Which codes are evidence, and why:
 * - S3140 / S3150 / AS31xx, 5.7.606–5.7.649, 5.7.511: the IP is on a Microsoft block list → `block`
 *   with its delisting route.
 * - S775 / 4.7.650 and RP-001..003: Outlook.com throttles the IP on reputation → `warning`
 *   reputation_deferral (not blocked yet, at risk).
 * - 5.7.515: the sending domain fails the bulk-sender authentication rules → `warning` auth_requirements.
 * - SC-001..004, DY-001/002, OU-002: Outlook.com refuses the IP itself for policy reasons (reputation,
 *   namespace mining, open relay, dynamic or compromised host). There is no delisting route for them,
 *   but ignoring them would hide a real problem → `warning` reputation_deferral, the code's meaning in
 *   the detail so the analyst sees what to fix.
 * - OU-001: the IP is listed at Spamhaus (Outlook.com uses it) → `warning` dnsbl_listed.
 */

export type Route = 'outlook_form' | 'office365_portal' | 'delist_email';
export type WarningReason = 'reputation_deferral' | 'auth_requirements' | 'dnsbl_listed';

/** Routes in the order the decisions pick the first of. */
export const ROUTE_ORDER: readonly Route[] = ['outlook_form', 'office365_portal', 'delist_email'];

export interface CodeMatch {
  /** The code as found, normalised: S3140, AS3150, 5.7.606, S775, 4.7.650, RP-001, ... */
  code: string;
  kind: 'block' | 'warning';
  route: Route | null;
  reason: WarningReason | null;
  meaning: string;
}

interface CodeRule {
  pattern: RegExp;
  normalise(match: RegExpExecArray): string;
  describe(code: string): Omit<CodeMatch, 'code'>;
}

const POLICY_MEANINGS: Record<string, string> = {
  'RP-001': 'rate limited: too many messages from this IP (reputation-based limit)',
  'RP-002': 'rate limited: too many messages from this IP (reputation-based limit)',
  'RP-003': 'rate limited: too many connections from this IP (reputation-based limit)',
  'SC-001': 'rejected for policy reasons: content or IP/domain reputation',
  'SC-002': 'rejected: the IP showed namespace mining (dictionary attack) behaviour',
  'SC-003': 'rejected: the IP appears to be an open proxy or relay',
  'SC-004': 'rejected for policy reasons: reputation; Microsoft recommends enrolling in JMRP',
  'DY-001': 'rejected: the IP looks dynamic (residential), not a mail server',
  'DY-002': 'rejected: the host looks compromised or infected',
  'OU-001': 'rejected: the IP is listed at Spamhaus',
  'OU-002': 'rejected for policy reasons: IP/domain reputation',
};

const RULES: CodeRule[] = [
  {
    // "(S3140)", "(S3150)", "AS3140", "AS(3150)", "AS(3140)": the Outlook.com consumer block list.
    pattern: /\b(?:AS\(?(31\d\d)\)?|S(3140|3150))\b/g,
    normalise: (m) => (m[1] ? `AS${m[1]}` : `S${m[2]}`),
    describe: (code) => ({
      kind: 'block',
      route: 'outlook_form',
      reason: null,
      meaning: `IP on the Outlook.com block list (${code})`,
    }),
  },
  {
    pattern: /\b5\.7\.(6(?:0[6-9]|[1-3]\d|4\d))\b/g,
    normalise: (m) => `5.7.${m[1]}`,
    describe: (code) => ({
      kind: 'block',
      route: 'office365_portal',
      reason: null,
      meaning: `IP on the Microsoft 365 block list (${code}): delist at sender.office.com`,
    }),
  },
  {
    pattern: /\b5\.7\.511\b/g,
    normalise: () => '5.7.511',
    describe: () => ({
      kind: 'block',
      route: 'delist_email',
      reason: null,
      meaning: 'banned sender on Microsoft 365 (5.7.511): the portal is not allowed, forward the NDR to delist@microsoft.com',
    }),
  },
  {
    pattern: /\b5\.7\.515\b/g,
    normalise: () => '5.7.515',
    describe: () => ({
      kind: 'warning',
      route: null,
      reason: 'auth_requirements',
      meaning: 'sending domain does not meet the bulk-sender authentication rules (SPF, DKIM, DMARC)',
    }),
  },
  {
    pattern: /\((S775)\)|\b(4\.7\.650)\b/g,
    normalise: (m) => (m[1] ? 'S775' : '4.7.650'),
    describe: (code) => ({
      kind: 'warning',
      route: null,
      reason: 'reputation_deferral',
      meaning: `temporarily rate limited due to IP reputation (${code})`,
    }),
  },
  {
    pattern: /\b(RP-00[1-3]|SC-00[1-4]|DY-00[12]|OU-00[12])\b/g,
    normalise: (m) => m[1]!,
    describe: (code) => ({
      kind: 'warning',
      route: null,
      reason: code === 'OU-001' ? 'dnsbl_listed' : 'reputation_deferral',
      meaning: POLICY_MEANINGS[code] ?? code,
    }),
  },
];

/** Every Microsoft code named in a diagnostic text, each once, in the order of RULES. */
export function findMicrosoftCodes(text: string): CodeMatch[] {
  return joinCodes(codesByRule(text));
}

/** The codes of one text, one list per rule (RULES order): see joinCodes. */
export type CodesByRule = readonly (readonly CodeMatch[])[];

const MAX_SCANNED = 20_000;

/** The codes of one text by rule, for a text read for many recipients: scanned once, then joined with
 * each recipient's own text by joinCodes instead of scanned again for each. */
export function codesByRule(text: string): CodesByRule {
  const scanned = text.length > MAX_SCANNED ? text.slice(0, MAX_SCANNED) : text;
  return RULES.map((rule) => {
    const found = new Map<string, CodeMatch>();
    rule.pattern.lastIndex = 0;
    for (let m = rule.pattern.exec(scanned); m; m = rule.pattern.exec(scanned)) {
      const code = rule.normalise(m);
      if (!found.has(code)) found.set(code, { code, ...rule.describe(code) });
    }
    return [...found.values()];
  });
}

/** The codes of several texts, each once, in the order findMicrosoftCodes gives for the texts joined by
 * line breaks (no code spans a line break). Each text is capped on its own, not the join. */
export function joinCodes(...texts: CodesByRule[]): CodeMatch[] {
  const found = new Map<string, CodeMatch>();
  RULES.forEach((_, i) => {
    for (const codes of texts) for (const c of codes[i]!) if (!found.has(c.code)) found.set(c.code, c);
  });
  return [...found.values()];
}

/**
 * The one piece of evidence a bounce stands for: a block beats a warning (the route of the first
 * block by ROUTE_ORDER), then auth_requirements, dnsbl_listed, reputation_deferral. S775 together with
 * 4.7.650 is one deferral, not two.
 */
export function strongestEvidence(matches: readonly CodeMatch[]): CodeMatch | null {
  const blocks = matches.filter((m) => m.kind === 'block');
  if (blocks.length > 0) {
    return [...blocks].sort((a, b) => ROUTE_ORDER.indexOf(a.route!) - ROUTE_ORDER.indexOf(b.route!))[0]!;
  }
  const order: WarningReason[] = ['auth_requirements', 'dnsbl_listed', 'reputation_deferral'];
  const warnings = matches.filter((m) => m.kind === 'warning');
  return [...warnings].sort((a, b) => order.indexOf(a.reason!) - order.indexOf(b.reason!))[0] ?? null;
}
