import type { Route } from '../ingest/bounces/microsoft-codes.js';

/**
 * The static part of each delisting route, as the seed article describes it: where to go and what
 * happens next. The report prints these next to the IPs that need them; `delist draft` adds the
 * IP-specific values.
 */
export interface RoutePlaybook {
  route: Route;
  title: string;
  /** Where the request is made. */
  where: string;
  /** Which NDRs lead here. */
  codes: string;
  steps: string[];
}

export const PLAYBOOK: Record<Route, RoutePlaybook> = {
  outlook_form: {
    route: 'outlook_form',
    title: 'Outlook.com sender support form (Outlook, Hotmail, Live, MSN block list)',
    where: 'https://olcsupport.office.com/ (Outlook.com deliverability support request)',
    codes: '550 5.7.1 ... part of their network is on our block list (S3140), S3150, AS31xx; SNDS IP Status "Blocked"',
    steps: [
      'Fill in the form with the fields below (IPs and ranges separated by semicolons, ranges as CIDR) and paste the full error text.',
      'An automatic answer arrives within 12 hours: "mitigated" (removed from the block list) or "conditionally mitigated" (not removed).',
      'If not removed, reply to that email and ask for the reason of the block: the first answer is a bot, a reply reaches a person who usually removes the address by hand.',
      'If refused ("Not eligible for delisting"), reply asking for a more thorough investigation and explain that your mail complies with Outlook.com policies and guidelines.',
      'When told the request is accepted and being monitored, answer (for example "Thank you, awaiting results") and keep corresponding until the delisting is confirmed.',
      'If a recently assigned IP is refused, ask the hosting company to confirm the date it was assigned to you and tell Microsoft; if it is still not removed, change the IP.',
      'Record every message: repwatch delist open / delist note (Microsoft may block the IP again; the history speeds up the next request).',
    ],
  },
  office365_portal: {
    route: 'office365_portal',
    title: 'Microsoft 365 delist portal (Exchange Online block list)',
    where: 'https://sender.office.com/',
    codes: '550 5.7.606 to 5.7.649 Access denied, banned sending IP [x.x.x.x]',
    steps: [
      'Go to https://sender.office.com/.',
      'Enter the email address the NDR was sent to and the blocked IP: one address and one IP per visit (repeat the visit for each IP).',
      'Click Submit: a confirmation email is sent to that address; follow the link in it.',
      'On the page that opens, click "Delist IP".',
      'The block is lifted within 24 hours; record the request with repwatch delist open and its outcome with delist note.',
    ],
  },
  delist_email: {
    route: 'delist_email',
    title: 'Forward the NDR to delist@microsoft.com (5.7.511: the portal is not allowed)',
    where: 'delist@microsoft.com',
    codes: '550 5.7.511 Access denied, banned sender[x.x.x.x]',
    steps: [
      'Forward the NDR (as an attachment, unmodified) to delist@microsoft.com.',
      'Answer A: a link to a form; fill it in and the address is removed from the block list.',
      'Answer B: the address is not on the block list; forward the most recent NDR to the same address.',
      'Record the request with repwatch delist open and every answer with delist note.',
    ],
  },
};

/** What to fix for each reason that makes an IP fix_first (or at_risk), in the analyst's words. */
export const FIXES: Record<string, string> = {
  complaint_rate:
    'The complaint rate is at or above the limit: find the campaigns and lists the complaints come from (JMRP reports), stop mailing complainers and unengaged recipients, make unsubscribing easy (List-Unsubscribe), and wait for a week of low complaints.',
  complaints_without_volume:
    'JMRP reports complaints from this IP while SNDS shows no mail from it in the window, so its complaint rate is unknown, not zero: check that the SNDS days are loaded (repwatch status) and that the IP is yours (the reports\' source_ip_origin), and treat the complaints as over the limit until SNDS shows the volume.',
  trap_hits:
    'Mail hit spam traps: remove addresses that never engaged or were not opted in, check where the lists came from, and validate new sign-ups (confirmed opt-in).',
  red_filter:
    'SNDS shows RED days (over 90% of the mail filtered as spam): stop bulk sending from this IP, find the traffic that is filtered (content, lists, compromised accounts), and send only wanted mail until the filter result improves.',
  yellow_filter: 'SNDS shows YELLOW days (10–90% filtered as spam): review content and list hygiene before it turns RED.',
  auth_requirements:
    'Outlook.com rejected mail with 5.7.515: publish SPF covering this IP, sign with DKIM, and publish DMARC (at least p=none) aligned with SPF or DKIM (repwatch check auth).',
  dnsbl_listed: 'The IP is on a blocklist Microsoft also uses (Spamhaus, or as the SNDS block says, Symantec Brightmail): fix the cause and delist there first (repwatch check blocklists shows where and why).',
  address_harvesting: 'SNDS blocks this IP for e-mail address harvesting: find what on it collects or probes addresses (a compromised host, directory-harvest attempts, list buying) and stop it before asking for delisting.',
  reputation_deferral: 'Outlook.com throttles this IP on reputation (S775 / 4.7.650, RP-/SC-/DY-/OU- codes): slow down, send only to engaged recipients, and check the server is not compromised or an open relay.',
  relisted: 'Microsoft blocked this IP again after a delisting: find what changed since, and attach the previous correspondence (repwatch delist status) to the new request.',
};
