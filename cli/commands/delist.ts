import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isStrictIp } from '../../checks/ip-address.js';
import type { Command } from 'commander';
import { z } from 'zod';
import type { CommandRunner } from '../command-runner.js';
import { ExitCode, UsageError, CliError } from '../exit-codes.js';
import { parseFormat, toJson, toTable } from '../output.js';
import { isDay, utcDay } from '../../lib/clock.js';
import { recomputeDays } from '../../transform/recompute.js';
import { buildDelistDrafts, defaultAsOf, renderDraft, storedNdr } from '../../delisting/drafts.js';
import { assertNotFuture } from './flags.js';
import { assertRoute, assertState, CaseInputError, listCases, noteCase, openCase, type DelistCase } from '../../delisting/cases.js';

/** What Microsoft's delisting form asks about the sending server. */
const SERVER_TYPES = ['dedicated', 'shared'];

/**
 * `repwatch delist draft | open | note | status`: what to send for a blocked IP, and the history of
 * every request. Exit codes: 0 done; 1 draft refused (fix_first, not blocked, unknown IP); 2 usage.
 */
export function registerDelist(program: Command, run: CommandRunner): void {
  const delist = program.command('delist').description('delisting requests: drafts per route, and cases with their whole correspondence');

  delist
    .command('draft')
    .description('what to send or do for a blocked IP, per route (refused for fix_first IPs, with what to fix)')
    .requiredOption('--ip <ip>', 'the blocked IP')
    .option('--as-of <date>', 'decisions of this date, not after today (default: as for flags)')
    .option('--contact-name <name>', 'fill the form\'s contact name')
    .option('--contact-email <email>', 'fill the form\'s contact email (replies go there)')
    .option('--company <text>', 'company description for the form')
    .option('--server-type <type>', 'dedicated or shared')
    .option('--save-ndr <file>', 'write the stored NDR to forward (delist_email route) to this .eml file')
    .option('--format <format>', 'text or json (default text)')
    .action((o: { ip: string; asOf?: string; contactName?: string; contactEmail?: string; company?: string; serverType?: string; saveNdr?: string; format?: string }) =>
      run(async (ctx) => {
        if (!isStrictIp(o.ip)) throw new UsageError(`--ip: not an IP address: ${o.ip}`);
        if (o.asOf && !isDay(o.asOf)) throw new UsageError('--as-of must be a date as YYYY-MM-DD');
        if (o.asOf) assertNotFuture(`--as-of ${o.asOf}`, o.asOf, ctx.clock.now());
        if (o.format && !['text', 'json'].includes(o.format)) throw new UsageError('--format must be text or json');
        // The form's fields are filled in as given: a typo here would be sent to Microsoft.
        if (o.contactEmail !== undefined && !z.email().safeParse(o.contactEmail.trim()).success) throw new UsageError(`--contact-email: not an email address: ${o.contactEmail}`);
        const serverType = o.serverType?.trim().toLowerCase();
        if (serverType !== undefined && !SERVER_TYPES.includes(serverType)) throw new UsageError(`--server-type must be ${SERVER_TYPES.join(' or ')}, not ${o.serverType}`);
        const database = await ctx.database();
        const asOf = o.asOf ?? (await defaultAsOf(database, utcDay(ctx.clock.now()), ctx.config.thresholds.windowDays));
        const contact = {
          ...(o.contactName ? { name: o.contactName } : {}),
          ...(o.contactEmail ? { email: o.contactEmail.trim() } : {}),
          ...(o.company ? { company: o.company } : {}),
          ...(serverType ? { serverType } : {}),
        };
        const result = await buildDelistDrafts(database, ctx.config, o.ip, asOf, contact);
        if (o.saveNdr) {
          const attach = result.drafts.find((d) => d.route === 'delist_email')?.attach;
          const raw = attach ? await storedNdr(database, attach.messageRef) : null;
          if (!raw) throw new CliError(`no stored 5.7.511 NDR for ${result.ip} to save`);
          writeFileSync(resolve(o.saveNdr), raw);
        }
        ctx.stdout.write(o.format === 'json' ? toJson(result) : renderDraft(result));
        return result.refused ? ExitCode.failed : ExitCode.ok;
      }),
    );

  delist
    .command('open')
    .description('record a delisting request as a case (state requested)')
    .option('--ip <ip>', 'the IP the request is for')
    .option('--range <cidr>', 'or the range')
    .requiredOption('--route <route>', 'outlook_form, office365_portal or delist_email')
    .option('--note <text>', 'what was sent')
    .option('--force', 'open it even while an active case on the same route covers these IPs')
    .option('--format <format>', 'table or json')
    .action((o: { ip?: string; range?: string; route: string; note?: string; force?: boolean; format?: string }) =>
      run(async (ctx) => {
        if (Boolean(o.ip) === Boolean(o.range)) throw new UsageError('give exactly one of --ip or --range');
        const created = await usage(async () =>
          openCase(await ctx.database(), { target: (o.ip ?? o.range)!, route: assertRoute(o.route), note: o.note ?? null, at: ctx.clock.now(), force: o.force === true }),
        );
        ctx.stdout.write(
          parseFormat(o.format, ['table', 'json'], ctx.stdout.isTTY) === 'json'
            ? toJson(created)
            : `opened case #${created.id} for ${created.target} (${created.route})\n${created.warnings.map((w) => `warning: ${w}\n`).join('')}`,
        );
      }),
    );

  delist
    .command('note')
    .description('record a state change on a case, with the message received or sent if any (every message is kept)')
    .requiredOption('--case <id>', 'the case number')
    .requiredOption('--state <state>', 'requested, mitigated, conditionally_mitigated, refused, escalated, delisted or relisted')
    .option('--message-file <file>', 'the message received or sent (kept verbatim)')
    .option('--text <text>', 'or the message as text')
    .option('--direction <dir>', 'in (from Microsoft) or out (to Microsoft)')
    .option('--format <format>', 'table or json')
    .action((o: { case: string; state: string; messageFile?: string; text?: string; direction?: string; format?: string }) =>
      run(async (ctx) => {
        const caseId = Number(o.case);
        if (!Number.isInteger(caseId) || caseId <= 0) throw new UsageError('--case must be a case number');
        if (o.messageFile && o.text) throw new UsageError('give --message-file or --text, not both');
        if (o.direction && !['in', 'out'].includes(o.direction)) throw new UsageError('--direction must be in or out');
        let body: string | null = o.text ?? null;
        if (o.messageFile) {
          try {
            body = readFileSync(resolve(o.messageFile), 'utf8');
          } catch (error) {
            throw new UsageError(`--message-file: cannot read ${o.messageFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
          }
        }
        const database = await ctx.database();
        const result = await usage(() =>
          noteCase(database, {
            caseId,
            state: assertState(o.state),
            body,
            sourceFile: o.messageFile ? resolve(o.messageFile) : null,
            direction: (o.direction as 'in' | 'out' | undefined) ?? null,
            at: ctx.clock.now(),
          }),
        );
        if (result.relistedDays.length > 0) await recomputeDays(database, ctx.config, result.relistedDays);
        ctx.stdout.write(parseFormat(o.format, ['table', 'json'], ctx.stdout.isTTY) === 'json' ? toJson(result.case) : `case #${result.case.id} ${result.case.target}: ${result.case.state} (${result.case.messages.length} message(s))\n`);
      }),
    );

  delist
    .command('status')
    .description('the cases, newest first, with their history')
    .option('--ip <ip>', 'only cases whose IP or range contains this IP')
    .option('--format <format>', 'table or json (json includes every message)')
    .action((o: { ip?: string; format?: string }) =>
      run(async (ctx) => {
        if (o.ip && !isStrictIp(o.ip) && !o.ip.includes('/')) throw new UsageError(`--ip: not an IP address: ${o.ip}`);
        const cases = await usage(async () => listCases(await ctx.database(), o.ip ? { ip: o.ip } : {}));
        ctx.stdout.write(parseFormat(o.format, ['table', 'json'], ctx.stdout.isTTY) === 'json' ? toJson(cases) : renderCases(cases));
      }),
    );
}


/** Input mistakes found below the CLI (unknown case, bad CIDR) are usage errors. */
async function usage<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof CaseInputError) throw new UsageError(error.message);
    throw error;
  }
}

function renderCases(cases: DelistCase[]): string {
  if (cases.length === 0) return 'no delisting cases\n';
  const rows = cases.map((c) => ({
    id: `#${c.id}`,
    target: c.target,
    route: c.route,
    state: c.state,
    opened: c.openedAt.toISOString().slice(0, 10),
    msgs: c.messages.length,
  }));
  return toTable(rows, [
    { key: 'id' },
    { key: 'target', max: 18 },
    { key: 'route', max: 16 },
    { key: 'state', max: 14 },
    { key: 'opened' },
    { key: 'msgs', align: 'right' },
  ]);
}
