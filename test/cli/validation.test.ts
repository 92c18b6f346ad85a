import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from '../support/run-cli.js';
import { startDnsServer, type DnsServer } from '../support/dns-server.js';

const homes: string[] = [];
function tempHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'repwatch-validation-'));
  homes.push(home);
  return home;
}
afterAll(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function withConfig(yaml: string): { home: string; path: string } {
  const home = tempHome();
  const path = join(home, 'repwatch.yaml');
  writeFileSync(path, yaml);
  return { home, path };
}

describe('bad values are caught at start with exit 2, naming the key', () => {
  it('snds login: a --port or --timeout that is not a number in range', async () => {
    const home = tempHome();
    for (const [args, message] of [
      [['--port', '99999'], /--port must be a port number from 0 to 65535/],
      [['--port', 'http'], /--port must be a port number/],
      [['--timeout', 'abc'], /--timeout must be a number of seconds from 1 to 3600/],
      [['--timeout', '-1'], /--timeout must be a number of seconds/],
    ] as const) {
      const result = await runCliCaptured(['snds', 'login', ...args], { env: { REPWATCH_HOME: home } });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });

  it('a pool entry that is not an IP address or CIDR range', async () => {
    const { home, path } = withConfig("pools:\n  m: ['203.0.113.0/24', 'mail.example.com', '10.1', '192.0.2.1/33', '2001:db8::/32', '198.51.100.7']\n");
    const result = await runCliCaptured(['--config', path, 'migrate'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/pools\.m\[1\]: must be an IPv4\/IPv6 address or a CIDR range/);
    expect(result.stderr).toMatch(/pools\.m\[2\]/);
    expect(result.stderr).toMatch(/pools\.m\[3\]/);
    expect(result.stderr).not.toMatch(/pools\.m\[[045]\]/);
  });

  it('blocklists.resolver that is not IP[:port]', async () => {
    const { home, path } = withConfig('blocklists:\n  resolver: nonsense\n');
    const result = await runCliCaptured(['--config', path, 'migrate'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/blocklists\.resolver: must be an IP address, IP:port or \[IPv6\]:port/);
  });

  it('check --resolver that is not IP[:port]', async () => {
    for (const verb of ['blocklists', 'auth']) {
      const result = await runCliCaptured(['check', verb, '--resolver', 'nonsense'], { env: { REPWATCH_HOME: '/nonexistent/never-created' } });
      expect(result.code, verb).toBe(2);
      expect(result.stderr).toMatch(/--resolver must be an IP address, IP:port or \[IPv6\]:port/);
    }
  });

  it('a log level that is not one (REPWATCH_LOG_LEVEL or --log-level)', async () => {
    const home = tempHome();
    const result = await runCliCaptured(['migrate'], { env: { REPWATCH_HOME: home, REPWATCH_LOG_LEVEL: 'bogus' } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/REPWATCH_LOG_LEVEL: log level must be one of trace, debug, info, warn, error, fatal, silent/);
    expect((await runCliCaptured(['--log-level', 'bogus', 'migrate'], { env: { REPWATCH_HOME: home } })).code).toBe(2);
  });

  it('DATABASE_URL or database.url that is not a postgres:// URL, without printing the value', async () => {
    const home = tempHome();
    for (const value of ['not a url', 'mysql://admin:hunter2secret@db.example/x']) {
      const result = await runCliCaptured(['migrate'], { env: { REPWATCH_HOME: home, DATABASE_URL: value } });
      expect(result.code, value).toBe(2);
      expect(result.stderr).toMatch(/DATABASE_URL is not a postgres:\/\/ URL/);
      expect(result.stderr).not.toContain('hunter2secret');
      expect(result.stderr).not.toContain('not a url');
    }
    const { path } = withConfig('database:\n  url: "mysql://admin:hunter2secret@db.example/x"\n');
    const result = await runCliCaptured(['--config', path, 'migrate'], { env: { REPWATCH_HOME: home } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/database\.url: must be a postgres:\/\/ URL/);
    expect(result.stderr).not.toContain('hunter2secret');
  });
});

describe('a database that cannot be used is one line saying which and why, not a stack trace', () => {
  it('a refused connection, a missing database and a % that is not URL-encoding, the password never printed', async () => {
    const home = tempHome();
    const refused = await runCliCaptured(['status'], { env: { REPWATCH_HOME: home, DATABASE_URL: 'postgres://postgres:hunter2secret@127.0.0.1:9/nope' } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^repwatch: cannot use the database \(postgres 127\.0\.0\.1:9\/nope\): connection refused .*check DATABASE_URL or database\.url/m);
    expect(refused.stderr).not.toMatch(/"stack"|at withClient|hunter2secret/);
    const malformed = await runCliCaptured(['status'], { env: { REPWATCH_HOME: home, DATABASE_URL: 'postgres://postgres:p%C3%28ss@127.0.0.1:5432/x' } });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/DATABASE_URL: a %-escape in the user, password or database name is not valid UTF-8; write a literal % as %25/);
    expect(malformed.stderr).not.toContain('p%C3%28ss');
    // A lone % is taken literally, as pg takes it: the URL is used (here: nothing listens on port 9).
    const literal = await runCliCaptured(['status'], { env: { REPWATCH_HOME: home, DATABASE_URL: 'postgres://postgres:50%off@127.0.0.1:9/x' } });
    expect(literal.code).toBe(1);
    expect(literal.stderr).toMatch(/cannot use the database \(postgres 127\.0\.0\.1:9\/x\): connection refused/);
    expect(literal.stderr).not.toContain('50%off');
  });

  const server = process.env.DATABASE_URL;
  it.skipIf(!server)(`a database that does not exist on a reachable server${server ? '' : ' [SKIPPED: DATABASE_URL is not set]'}`, async () => {
    const url = new URL(server!);
    url.pathname = '/repwatch_no_such_database';
    const result = await runCliCaptured(['status'], { env: { REPWATCH_HOME: tempHome(), DATABASE_URL: url.toString() } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot use the database \(postgres .*\/repwatch_no_such_database\): the database does not exist/);
  });
});

describe('repwatch ingest snds: usage errors before any work', () => {
  it('refuses "-" (stdin) given twice, exit 2', async () => {
    for (const args of [['--file', '-', '--status-file', '-'], ['--file', '-', '-']]) {
      const result = await runCliCaptured(['ingest', 'snds', ...args], { env: { REPWATCH_HOME: '/nonexistent/never-created' } });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/"-" \(stdin\) can be given only once/);
    }
  });

  it('refuses a --url or --status-url that is not an http(s) URL before opening anything, exit 2, without echoing it', async () => {
    for (const flag of ['--url', '--status-url']) {
      const result = await runCliCaptured(['ingest', 'snds', flag, 'not a url'], { env: { REPWATCH_HOME: '/nonexistent/never-created' } });
      expect(result.code, flag).toBe(2);
      expect(result.stderr).toContain(`${flag} is not an http(s):// URL`);
      expect(result.stderr).not.toContain('not a url');
      // Before opening the database: the home it would create does not exist.
      expect(existsSync('/nonexistent/never-created')).toBe(false);
    }
  });
});

describe('repwatch check auth when DNS fails', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({
      'ok.example': { TXT: ['v=spf1 -all'] },
      'broken.example': { rcode: 'SERVFAIL' },
      '_dmarc.broken.example': { rcode: 'SERVFAIL' },
    });
  });
  afterAll(async () => dns?.close());

  it('says "could not check" (never FLAGGED or fails) and exits 1 when no domain could be checked', async () => {
    const { home, path } = withConfig('blocklists:\n  timeoutMs: 300\n');
    const result = await runCliCaptured(
      ['--config', path, '--log-level', 'silent', 'check', 'auth', '--resolver', '127.0.0.1:1', '--domain', 'a.example', 'b.example', '--format', 'table'],
      { env: { REPWATCH_HOME: home } },
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/a\.example.*could not check \(DNS: /);
    expect(result.stdout).toMatch(/b\.example.*could not check \(DNS: /);
    expect(result.stdout).not.toMatch(/FLAGGED|\bfails\b/);
  }, 60_000);

  it('exits 0 when some domain was checked, marking only the failed one', async () => {
    const { home, path } = withConfig('blocklists:\n  timeoutMs: 1000\n');
    const result = await runCliCaptured(
      ['--config', path, '--log-level', 'silent', 'check', 'auth', '--resolver', dns.address, '--domain', 'ok.example', 'broken.example', '--format', 'json'],
      { env: { REPWATCH_HOME: home } },
    );
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout) as { domain: string; checked: boolean; dnsError: string | null; flagged: boolean }[];
    const byDomain = Object.fromEntries(rows.map((r) => [r.domain, r]));
    expect(byDomain['ok.example']).toMatchObject({ checked: true, dnsError: null });
    expect(byDomain['broken.example']).toMatchObject({ checked: false, flagged: false });
    expect(byDomain['broken.example']!.dnsError).toMatch(/SPF ESERVFAIL/);
  }, 60_000);
});
