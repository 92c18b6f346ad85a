/** The CLI's promise to cron, systemd and monitoring. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** A source needs a person: an expired SNDS link, a login to redo. */
  needsPerson: 3,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error whose exit code and message are meant for the person at the terminal (no stack trace). */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: ExitCodeValue = ExitCode.failed) {
    super(message);
    this.name = 'CliError';
  }
}

/** A source a person must fix (refresh a link, log in again): exit 3, with what to do. */
export class NeedsPersonError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.needsPerson);
    this.name = 'NeedsPersonError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = 'UsageError';
  }
}
