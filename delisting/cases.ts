import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { isStrictIp } from '../checks/ip-address.js';
import type { Database, Session } from '../db/connection.js';
import { ROUTE_ORDER, type Route } from '../ingest/bounces/microsoft-codes.js';

/**
 * Delisting cases: one per request made to Microsoft (an IP or a range, one route), with every state
 * change and every message exchanged kept in order. The seed article's advice: keep the whole history,
 * Microsoft may block the IP again and the history speeds up the next request.
 */

export const CASE_STATES = ['requested', 'mitigated', 'conditionally_mitigated', 'refused', 'escalated', 'delisted', 'relisted'] as const;
export type CaseState = (typeof CASE_STATES)[number];

/** States in which the block is lifted: a block seen after them is a relisting. */
export const CLOSED_STATES: readonly CaseState[] = ['mitigated', 'delisted'];

export interface CaseMessage {
  id: number;
  at: Date;
  state: CaseState;
  direction: 'in' | 'out' | null;
  body: string | null;
  sourceFile: string | null;
}

export interface DelistCase {
  id: number;
  target: string;
  route: Route;
  openedAt: Date;
  state: CaseState;
  stateChangedAt: Date;
  closedAt: Date | null;
  relistedAt: Date | null;
  messages: CaseMessage[];
}

export class CaseInputError extends Error {}

/** An IP (`203.0.113.5`) or a range (`203.0.113.0/28`) as a normalised CIDR; throws CaseInputError. */
export function normaliseTarget(value: string): string {
  const text = value.trim();
  try {
    if (!isStrictIp(text.split('/')[0]!)) throw new Error('not strict');
    if (text.includes('/')) {
      const [addr, bits] = ipaddr.parseCIDR(text);
      const network = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(text) : ipaddr.IPv6.networkAddressFromCIDR(text);
      return `${network.toString()}/${bits}`;
    }
    const addr = ipaddr.parse(text);
    return `${addr.toString()}/${addr.kind() === 'ipv4' ? 32 : 128}`;
  } catch {
    throw new CaseInputError(`not an IP address or CIDR range: ${value}`);
  }
}

export function assertRoute(value: string): Route {
  if (!(ROUTE_ORDER as readonly string[]).includes(value)) throw new CaseInputError(`--route must be one of ${ROUTE_ORDER.join(', ')}`);
  return value as Route;
}

export function assertState(value: string): CaseState {
  if (!(CASE_STATES as readonly string[]).includes(value)) throw new CaseInputError(`--state must be one of ${CASE_STATES.join(', ')}`);
  return value as CaseState;
}

type Queryable = Pick<Session, 'query'>;

/** States in which a case is still being worked on: a second request for its IPs on its route belongs in it. */
const ACTIVE_STATES: readonly CaseState[] = CASE_STATES.filter((s) => !CLOSED_STATES.includes(s) && s !== 'refused');

export interface OpenedCase extends DelistCase {
  /** Things to check before sending (no block evidence for the target on this route). */
  warnings: string[];
}

/**
 * Open a case. Refused (CaseInputError) while an active case on the same route covers any of the
 * target's IPs, unless `force`: the correspondence of one request belongs in one case (note progress on
 * it, or `requested` again after a relisting).
 */
export async function openCase(database: Database, input: { target: string; route: Route; note?: string | null; at: Date; force?: boolean }): Promise<OpenedCase> {
  const target = normaliseTarget(input.target);
  const warnings: string[] = [];
  const id = await database.transaction(async (session) => {
    // Two opens at once must not both find no active case.
    await session.query(`select pg_advisory_xact_lock(hashtext('repwatch.delist_case_open'))`);
    const active = await session.query<{ id: number; target: string; state: string }>(
      `select id, target::text as target, state from repwatch.delist_case
       where route = $2 and target && $1::cidr and state = any($3::text[]) order by id`,
      [target, input.route, ACTIVE_STATES],
    );
    if (active.length > 0 && !input.force) {
      const list = active.map((c) => `#${c.id} (${c.target}, ${c.state})`).join(', ');
      throw new CaseInputError(
        `case ${list} already covers ${target} on route ${input.route}: record progress there with \`repwatch delist note --case ${active[0]!.id}\` (after a relisting, --state requested), or pass --force to open another`,
      );
    }
    const [evidence] = await session.query<{ found: boolean }>(
      `select exists (select 1 from repwatch.block_evidence where kind = 'block' and route = $2 and ip <<= $1::cidr)
           or ($2 = 'outlook_form' and exists (select 1 from analytics.ip_status s where s.blocked
                 and s.first_ip <= host(broadcast($1::cidr))::inet and s.last_ip >= host(network($1::cidr))::inet)) as found`,
      [target, input.route],
    );
    if (!evidence?.found) {
      warnings.push(
        `no block evidence for ${target} on route ${input.route} (no stored bounce with its code${input.route === 'outlook_form' ? ', not in the current SNDS IP Status list' : ''}): check that this is the route the bounces name`,
      );
    }
    const [row] = await session.query<{ id: number }>(
      `insert into repwatch.delist_case (target, route, opened_at, state, state_changed_at)
       values ($1::cidr, $2, $3, 'requested', $3) returning id`,
      [target, input.route, input.at],
    );
    await addMessage(session, row!.id, { at: input.at, state: 'requested', direction: 'out', body: input.note ?? null, sourceFile: null });
    return row!.id;
  });
  return { ...(await getCase(database, id))!, warnings };
}

/**
 * Record a state change and/or a message on a case. Closing states set closed_at, reopening clears it; `relisted` also
 * writes the relisted warning evidence (the caller recomputes that day's decisions).
 */
export async function noteCase(
  database: Database,
  input: { caseId: number; state: CaseState; body?: string | null; sourceFile?: string | null; direction?: 'in' | 'out' | null; at: Date },
): Promise<{ case: DelistCase; relistedDays: string[] }> {
  const relistedDays = await database.transaction(async (session) => {
    const [current] = await session.query<{ id: number; state: CaseState; target: string }>(
      'select id, state, target::text as target from repwatch.delist_case where id = $1 for update',
      [input.caseId],
    );
    if (!current) throw new CaseInputError(`no delisting case ${input.caseId} (see repwatch delist status)`);
    await addMessage(session, input.caseId, {
      at: input.at,
      state: input.state,
      direction: input.direction ?? null,
      body: input.body ?? null,
      sourceFile: input.sourceFile ?? null,
    });
    await session.query(
      `update repwatch.delist_case
       set state = $2::text,
           state_changed_at = case when state is distinct from $2::text then $3::timestamptz else state_changed_at end,
           -- Closing sets closed_at (a case already closed keeps its first closing: mitigated, then
           -- delisted); reopening (any active state) clears it; relisted keeps when it was closed, and
           -- closing a relisted case again sets the new time, else the block that relisted it, dated
           -- after the old closing, would relist it again at the next check.
           closed_at = case when $2::text = any($4::text[]) then
                              case when state = any($4::text[]) then coalesce(closed_at, $3::timestamptz) else $3::timestamptz end
                            when $2::text = 'relisted' then closed_at else null end,
           relisted_at = case when $2::text = 'relisted' then $3::timestamptz else relisted_at end
       where id = $1::bigint`,
      [input.caseId, input.state, input.at, CLOSED_STATES],
    );
    if (input.state !== 'relisted' || current.state === 'relisted') return [];
    const day = input.at.toISOString().slice(0, 10);
    await insertRelistedEvidence(session, input.caseId, current.target, day, 'recorded by hand on the case');
    return [day];
  });
  return { case: (await getCase(database, input.caseId))!, relistedDays };
}

async function addMessage(session: Queryable, caseId: number, m: { at: Date; state: CaseState; direction: 'in' | 'out' | null; body: string | null; sourceFile: string | null }): Promise<void> {
  const sha256 = m.body ? createHash('sha256').update(m.body).digest('hex') : null;
  await session.query(
    `insert into repwatch.delist_case_message (case_id, at, state, direction, body, source_file, sha256)
     values ($1, $2, $3, $4, $5, $6, $7)`,
    [caseId, m.at, m.state, m.direction, m.body, m.sourceFile, sha256],
  );
}

/**
 * Relisted evidence for a case's target: one row per IP for a single address; for a range, one row for
 * its network address is not enough (decisions are per IP), so the IPs with data in the range are used.
 */
export async function insertRelistedEvidence(session: Queryable, caseId: number, target: string, day: string, why: string): Promise<void> {
  await session.query(
    `insert into repwatch.block_evidence (ip, day, kind, route, reason, source, detail, ref_id)
     select distinct ip, $3::date, 'warning', null, 'relisted', 'delist_case', $4::text, $1::bigint
     from (
       select host($2::cidr)::inet as ip where masklen($2::cidr) in (32, 128)
       union select ip from repwatch.ip_day_fact where ip <<= $2::cidr
       union select ip from repwatch.block_evidence where ip <<= $2::cidr and kind = 'block'
     ) ips
     where not exists (select 1 from repwatch.block_evidence e
                       where e.source = 'delist_case' and e.ref_id = $1::bigint and e.ip = ips.ip and e.day = $3::date)`,
    [caseId, target, day, `case ${caseId}: blocked again after the block was lifted (${why})`.slice(0, 1000)],
  );
}

interface CaseRow {
  id: number;
  target: string;
  route: Route;
  opened_at: Date;
  state: CaseState;
  state_changed_at: Date;
  closed_at: Date | null;
  relisted_at: Date | null;
}

const CASE_COLUMNS = 'c.id, c.target::text as target, c.route, c.opened_at, c.state, c.state_changed_at, c.closed_at, c.relisted_at';

export async function getCase(database: Pick<Database, 'query'>, id: number): Promise<DelistCase | null> {
  const cases = await listCases(database, { id });
  return cases[0] ?? null;
}

/** Cases, newest first; `ip` selects the cases whose target contains that IP (or overlaps that range). */
export async function listCases(database: Pick<Database, 'query'>, filter: { ip?: string; id?: number } = {}): Promise<DelistCase[]> {
  const target = filter.ip ? normaliseTarget(filter.ip) : null;
  const rows = await database.query<CaseRow>(
    `select ${CASE_COLUMNS} from repwatch.delist_case c
     where ($1::cidr is null or c.target && $1::cidr) and ($2::bigint is null or c.id = $2)
     order by c.opened_at desc, c.id desc`,
    [target, filter.id ?? null],
  );
  if (rows.length === 0) return [];
  const messages = await database.query<{ id: number; case_id: number; at: Date; state: CaseState; direction: 'in' | 'out' | null; body: string | null; source_file: string | null }>(
    `select id, case_id, at, state, direction, body, source_file from repwatch.delist_case_message
     where case_id = any($1::bigint[]) order by at, id`,
    [rows.map((r) => r.id)],
  );
  return rows.map((r) => ({
    id: r.id,
    target: displayTarget(r.target),
    route: r.route,
    openedAt: r.opened_at,
    state: r.state,
    stateChangedAt: r.state_changed_at,
    closedAt: r.closed_at,
    relistedAt: r.relisted_at,
    messages: messages
      .filter((m) => m.case_id === r.id)
      .map((m) => ({ id: m.id, at: m.at, state: m.state, direction: m.direction, body: m.body, sourceFile: m.source_file })),
  }));
}

/** `203.0.113.5/32` → `203.0.113.5`; ranges stay CIDR. */
export function displayTarget(cidr: string): string {
  if (!cidr.includes(':') && cidr.endsWith('/32')) return cidr.slice(0, -3);
  if (cidr.includes(':') && cidr.endsWith('/128')) return cidr.slice(0, -4);
  return cidr;
}
