import { z } from 'zod';
import { isDay } from '../lib/clock.js';
import { validate as validateCron } from 'node-cron';
import ipaddr from 'ipaddr.js';
import { cronExpressionProblem } from '../jobs/cron.js';

/**
 * The configuration file's shape. Every object is strict: an unknown key is an error naming its path,
 * because a misspelt key silently ignored is how a feed stops being fetched without anyone noticing.
 * Secrets may be given inline, as `${ENV_VAR}`, or through the matching `*File` key.
 */

const day = z.string().refine(isDay, 'must be a date as YYYY-MM-DD');
const timezone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as UTC or America/Los_Angeles');
/** Five fields (minute hour day-of-month month day-of-week), parsed by node-cron, which matches them;
 * then the scheduler's own rules (jobs/cron.ts), so an expression it would refuse is refused here, at
 * load, with the key's path. */
const cron = z
  .string()
  .min(1)
  .superRefine((expression, ctx) => {
    if (!validateCron(expression.trim())) {
      ctx.addIssue({ code: 'custom', message: 'must be a cron expression such as "15 6 * * *"' });
      return;
    }
    const problem = cronExpressionProblem(expression);
    if (problem) ctx.addIssue({ code: 'custom', message: `"${expression.trim()}": ${problem}` });
  });

/** A dotted quad or an IPv6 address, strictly (ipaddr.js alone also takes inet_aton shorthands like "10.1"). */
function isStrictIp(text: string): boolean {
  return text.includes(':') ? ipaddr.IPv6.isValid(text) : ipaddr.IPv4.isValidFourPartDecimal(text);
}

/** An IP address (its own /32 or /128) or a CIDR range: what a pool entry may be. */
export function isIpOrCidr(entry: string): boolean {
  const text = entry.trim();
  const [address = '', prefix, ...rest] = text.split('/');
  if (rest.length > 0 || !isStrictIp(address)) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  try {
    ipaddr.parseCIDR(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A DNS server as node:dns takes it: `IP`, `IP:port` or `[IPv6]:port` (a bare IPv6 address too). Host
 * names are refused: node's Resolver.setServers takes addresses only.
 */
export function isResolverAddress(value: string): boolean {
  const text = value.trim();
  const port = (p: string | undefined) => p === undefined || (/^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535);
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return ipaddr.IPv6.isValid(bracketed[1]!) && port(bracketed[2]);
  if (ipaddr.IPv6.isValid(text) && text.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(text)) return true;
  const [host = '', p, ...rest] = text.split(':');
  return rest.length === 0 && ipaddr.IPv4.isValidFourPartDecimal(host) && port(p);
}
export const RESOLVER_HINT = 'must be an IP address, IP:port or [IPv6]:port, such as 127.0.0.1:53 (not a host name)';

/** postgres:// or postgresql://, parseable as a URL. The value is never echoed: it may hold a password. */
export function isPostgresUrl(value: string): boolean {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

/** http(s) only: a link or API address in another scheme cannot be fetched (and was retried as if it could). */
export function isHttpUrl(value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

export function isSmtpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return ['smtp:', 'smtps:'].includes(url.protocol) && url.hostname.length > 0 && (url.port === '' || Number(url.port) > 0);
  } catch {
    return false;
  }
}

// Messages never repeat the value: these URLs carry keys and passwords.
const HTTP_URL = 'must be an http:// or https:// URL';
export const SMTP_URL = 'must be an smtp:// or smtps:// URL such as smtps://user:password@smtp.example.com:465';

/** Names that must be unique in a list (they name jobs and their ledger rows); `reserved` names are
 * taken, by what each says. */
function uniqueNames<T extends { name: string }>(what: string, reserved: Record<string, string> = {}) {
  return (items: T[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const takenBy = Object.hasOwn(reserved, item.name) ? reserved[item.name] : undefined;
      if (takenBy) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${item.name}" is reserved (${takenBy})` });
      else if (seen.has(item.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${item.name}" is used twice: ${what} names must be unique` });
      seen.add(item.name);
    });
  };
}

export const sndsFeedSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, dot, dash or underscore'),
    dataUrl: z.string().refine(isHttpUrl, HTTP_URL).optional(),
    dataUrlFile: z.string().optional(),
    statusUrl: z.string().refine(isHttpUrl, HTTP_URL).optional(),
    statusUrlFile: z.string().optional(),
    linkCreatedOn: day.optional(),
    timezone: timezone.default('UTC'),
    /** Ask the link for each re-fetched day with `date=MMDDYY`. Unset: only for legacy SNDS hosts
     * (sendersupport.olc.protection.outlook.com, postmaster.live.com); the 2026 portal's links, and
     * other hosts, are fetched once per run. */
    dateParameter: z.boolean().optional(),
  })
  .refine((f) => !(f.dataUrl && f.dataUrlFile), { message: 'give dataUrl or dataUrlFile, not both', path: ['dataUrlFile'] })
  .refine((f) => !(f.statusUrl && f.statusUrlFile), { message: 'give statusUrl or statusUrlFile, not both', path: ['statusUrlFile'] });

export const sndsApiSchema = z.strictObject({
  /** Where the refresh token is kept: a file (mode 0600) or the database. */
  tokenStore: z.enum(['file', 'database']).default('file'),
  tokenFile: z.string().optional(),
  baseUrl: z.string().url().default('https://substrate.office.com/ip-domain-management-snds/api'),
  authorizeUrl: z.string().url().default('https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize'),
  tokenUrl: z.string().url().default('https://login.microsoftonline.com/consumers/oauth2/v2.0/token'),
  clientId: z.string().default('a53a6cc1-a1cd-46f7-a4aa-281cdabec33c'),
  timezone: timezone.default('UTC'),
});

export const sndsSchema = z.strictObject({
  // "api" is the REST API's feed (snds:api, `--feed api`).
  feeds: z.array(sndsFeedSchema).superRefine(uniqueNames('SNDS feed', { api: 'the SNDS API feed' })).default([]),
  api: sndsApiSchema.optional(),
  refetchDays: z.number().int().min(0).max(90).default(3),
  timeoutMs: z.number().int().positive().default(60_000),
  connectTimeoutMs: z.number().int().positive().default(10_000),
  retries: z.number().int().min(0).max(10).default(3),
  linkLifetimeDays: z.number().int().positive().default(30),
  linkWarnDays: z.number().int().min(0).default(7),
});

const imapSchema = z
  .strictObject({
    host: z.string().min(1),
    port: z.number().int().positive().max(65535).optional(),
    secure: z.union([z.boolean(), z.literal('starttls')]).default(true),
    user: z.string().min(1),
    password: z.string().optional(),
    passwordFile: z.string().optional(),
    folder: z.string().default('INBOX'),
    archiveFolder: z.string().default('repwatch/archive'),
    quarantineFolder: z.string().default('repwatch/quarantine'),
    batchSize: z.number().int().positive().max(5000).default(200),
    tlsRejectUnauthorized: z.boolean().default(true),
  })
  .refine((m) => Boolean(m.password) !== Boolean(m.passwordFile), {
    message: 'give exactly one of password or passwordFile',
    path: ['password'],
  });

export const mailboxSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, dot, dash or underscore'),
    imap: imapSchema.optional(),
    maildir: z.string().optional(),
    mbox: z.string().optional(),
    /** How the mbox writer quoted body `From ` lines (mbox only): mboxrd (default) or mboxo. */
    quoting: z.enum(['mboxrd', 'mboxo']).optional(),
  })
  .refine((m) => [m.imap, m.maildir, m.mbox].filter((x) => x !== undefined).length === 1, {
    message: 'a mailbox needs exactly one of imap, maildir or mbox',
  })
  .refine((m) => m.quoting === undefined || m.mbox !== undefined, {
    message: 'quoting applies to an mbox mailbox only',
    path: ['quoting'],
  });

export const jmrpSchema = z.strictObject({
  mailboxes: z.array(mailboxSchema).superRefine(uniqueNames('JMRP mailbox')).default([]),
  campaignHeaders: z.array(z.string().min(1)).default(['X-Campaign-ID', 'Feedback-ID', 'CFBL-Feedback-ID', 'List-Id']),
  /** Complainers' addresses are personal data: a salted hash by default. */
  recipients: z.enum(['hash', 'plain', 'drop']).default('hash'),
  recipientSalt: z.string().optional(),
  recipientSaltFile: z.string().optional(),
  maxMessageBytes: z.number().int().positive().default(10 * 1024 * 1024),
});

export const bouncesSchema = z.strictObject({
  mailboxes: z.array(mailboxSchema).superRefine(uniqueNames('bounce mailbox')).default([]),
});

export const thresholdsSchema = z
  .strictObject({
    complaintRateWarn: z.number().min(0).max(1).default(0.001),
    complaintRateMax: z.number().min(0).max(1).default(0.003),
    windowDays: z.number().int().min(1).max(28).default(7),
    bulkSenderDailyVolume: z.number().int().positive().default(5000),
  })
  .refine((t) => t.complaintRateWarn <= t.complaintRateMax, {
    message: 'complaintRateWarn must not exceed complaintRateMax',
    path: ['complaintRateWarn'],
  });

export const reportsSchema = z.strictObject({
  /** Defaults to $REPWATCH_HOME/reports. */
  outDir: z.string().optional(),
  email: z
    .strictObject({
      smtpUrl: z.string().refine(isSmtpUrl, SMTP_URL).optional(),
      smtpUrlFile: z.string().optional(),
      from: z.string().min(3),
      to: z.array(z.string().min(3)).min(1),
    })
    .optional(),
});

export const scheduleSchema = z.strictObject({
  timezone: timezone.default('UTC'),
  snds: cron.default('15 6 * * *'),
  jmrp: cron.default('*/10 * * * *'),
  bounces: cron.default('*/10 * * * *'),
  report: cron.default('0 7 * * 1'),
  blocklists: cron.default('30 5 * * *'),
  /** How far back missed periods are run: the window includes the latest tick itself, so 1 means "only
   * the latest day (week), no catching up"; 0 would run nothing, ever. */
  sndsCatchUpDays: z.number().int().min(1, 'must be at least 1 (1 runs only the latest day; 0 would never run the job)').default(3),
  reportCatchUpWeeks: z.number().int().min(1, 'must be at least 1 (1 writes only the latest week; 0 would never write the report)').default(1),
  /** A failed job is retried after 1, 2, 4 … times this, up to retryMaxSeconds. */
  retryBaseSeconds: z.number().int().positive().default(60),
  retryMaxSeconds: z.number().int().positive().default(3600),
  /** `status` calls a job stale when its latest tick at least this old has not succeeded. */
  staleAfterMinutes: z.number().int().positive().default(60),
});

export const blocklistsSchema = z.strictObject({
  zones: z.array(z.string().min(1)).optional(),
  resolver: z.string().refine(isResolverAddress, RESOLVER_HINT).optional(),
  timeoutMs: z.number().int().positive().default(3000),
  concurrency: z.number().int().positive().default(8),
});

export const authChecksSchema = z.strictObject({
  domains: z.array(z.string().min(1)).default([]),
  dkimSelectors: z.record(z.string(), z.array(z.string().min(1))).default({}),
});

export const configSchema = z.strictObject({
  database: z.strictObject({ url: z.string().refine(isPostgresUrl, 'must be a postgres:// URL').optional(), urlFile: z.string().optional() }).optional(),
  snds: sndsSchema.default(sndsSchema.parse({})),
  jmrp: jmrpSchema.default(jmrpSchema.parse({})),
  bounces: bouncesSchema.default(bouncesSchema.parse({})),
  thresholds: thresholdsSchema.default(thresholdsSchema.parse({})),
  /** Named lists of CIDR ranges; "all" (every IP) is always there. */
  pools: z
    .record(z.string(), z.array(z.string().refine(isIpOrCidr, 'must be an IPv4/IPv6 address or a CIDR range such as 203.0.113.0/24')))
    .default({}),
  reports: reportsSchema.default(reportsSchema.parse({})),
  schedule: scheduleSchema.default(scheduleSchema.parse({})),
  blocklists: blocklistsSchema.default(blocklistsSchema.parse({})),
  auth: authChecksSchema.default(authChecksSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type SndsFeedConfig = z.infer<typeof sndsFeedSchema>;
export type MailboxConfig = z.infer<typeof mailboxSchema>;
export type Thresholds = z.infer<typeof thresholdsSchema>;
