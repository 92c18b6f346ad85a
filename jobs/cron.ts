import { createTask, parse, validate, type ScheduledTask } from 'node-cron';

const MINUTE = 60_000;

/**
 * Why an expression cannot be a schedule here, in words; null when it can. The configuration runs the
 * same checks at load, so a bad `schedule.*` key is a configuration error naming the key (exit 2), not a
 * failure of the first command that builds the jobs.
 */
export function cronExpressionProblem(expression: string): string | null {
  const trimmed = expression.trim();
  if (!validate(trimmed)) return 'not a valid cron expression';
  const fields = parse(trimmed);
  if (!fields.second.includes(0)) return 'schedules have minute resolution; a seconds field must include 0';
  // Classic cron runs when either restricted day field matches ("the 1st, and Mondays"); node-cron
  // only when both do, so "0 6 1 * 1" would run only on a Monday the 1st: months without one run.
  if (fields.dayOfMonth.length < 31 && fields.dayOfWeek.length < 7) {
    return 'it restricts both the day of the month and the day of the week; cron would run on either, this scheduler only on days that match both. Restrict one of them';
  }
  return null;
}

/**
 * A cron expression in a time zone, with the date arithmetic the scheduler needs and node-cron does not
 * expose: every tick between two instants (catch-up after downtime) and the tick before or after an
 * instant (due periods, status). node-cron parses the expression and decides whether an instant
 * matches — in its time zone, DST included; this class only walks the minutes.
 *
 * Schedules have minute resolution: a six-field expression must fire at second 0.
 */
export class CronSchedule {
  readonly expression: string;
  readonly timezone: string;
  private readonly matcher: ScheduledTask;
  /** Every IANA offset is a multiple of 15 minutes, so a local minute m can only fall on UTC minutes
   * with the same remainder mod 15: the rest are skipped without asking node-cron. */
  private readonly minuteResidues: Set<number>;
  private memo: { from: number; to: number; ticks: number[] } | undefined;
  private nextMemo: { from: number; lookaheadMs: number; tick: number | null } | undefined;

  constructor(expression: string, timezone = 'UTC') {
    const trimmed = expression.trim();
    const problem = cronExpressionProblem(trimmed);
    if (problem) throw new Error(`"${expression}": ${problem}`);
    const fields = parse(trimmed);
    this.expression = trimmed;
    this.timezone = timezone;
    // createTask only builds the task; it is never started, so it keeps no timer.
    this.matcher = createTask(trimmed, () => undefined, { timezone, name: `matcher ${trimmed}` });
    this.minuteResidues = new Set(fields.minute.map((m) => m % 15));
  }

  matches(at: Date): boolean {
    const ms = at.getTime();
    if (ms % MINUTE !== 0) return false;
    if (!this.minuteResidues.has(new Date(ms).getUTCMinutes() % 15)) return false;
    return this.matcher.match(at);
  }

  /** Ticks t with from < t <= to, oldest first. Repeated calls over sliding windows reuse earlier work. */
  ticksBetween(from: Date, to: Date): Date[] {
    const start = Math.floor(from.getTime() / MINUTE) * MINUTE + MINUTE;
    const end = Math.floor(to.getTime() / MINUTE) * MINUTE;
    if (end < start) return [];
    let ticks: number[];
    const memo = this.memo;
    if (memo && memo.from <= start && memo.to >= start && memo.to <= end) {
      ticks = memo.ticks.filter((t) => t >= start).concat(this.walk(memo.to + MINUTE, end));
    } else {
      ticks = this.walk(start, end);
    }
    this.memo = { from: start, to: end, ticks };
    return ticks.map((t) => new Date(t));
  }

  /** The latest tick at or before `at`, looking back at most `lookbackMs`; null when there is none. */
  previousTick(at: Date, lookbackMs: number): Date | null {
    let t = Math.floor(at.getTime() / MINUTE) * MINUTE;
    const stop = at.getTime() - lookbackMs;
    for (; t > stop; t -= MINUTE) if (this.matches(new Date(t))) return new Date(t);
    return null;
  }

  /**
   * The first tick strictly after `at`, looking ahead at most `lookaheadMs` (a year and a day: a yearly
   * schedule still has a next run; a leap-day one can be four years away and gets null). The walk over
   * a year of minutes takes up to a second, and `status` and every /metrics scrape ask for it, so the
   * answer is kept until its tick has passed (a null one for an hour).
   */
  nextTick(at: Date, lookaheadMs = 367 * 86_400_000): Date | null {
    const ms = at.getTime();
    const memo = this.nextMemo;
    if (memo && memo.lookaheadMs === lookaheadMs && ms >= memo.from && (memo.tick === null ? ms < memo.from + 3_600_000 : ms < memo.tick)) {
      return memo.tick === null ? null : new Date(memo.tick);
    }
    const stop = ms + lookaheadMs;
    let tick: number | null = null;
    for (let t = Math.floor(ms / MINUTE) * MINUTE + MINUTE; t <= stop; t += MINUTE) {
      if (this.matches(new Date(t))) {
        tick = t;
        break;
      }
    }
    this.nextMemo = { from: ms, lookaheadMs, tick };
    return tick === null ? null : new Date(tick);
  }

  private walk(start: number, end: number): number[] {
    const out: number[] = [];
    for (let t = start; t <= end; t += MINUTE) if (this.matches(new Date(t))) out.push(t);
    return out;
  }
}
