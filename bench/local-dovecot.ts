import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const DOVECOT = ['/usr/sbin/dovecot', '/usr/bin/dovecot'].find((p) => existsSync(p));
const DOVEADM = ['/usr/bin/doveadm', '/usr/sbin/doveadm'].find((p) => existsSync(p));

/** Whether a real Dovecot can be started here (Debian's dovecot-imapd; .ci/run installs it). */
export const dovecotAvailable = Boolean(DOVECOT && DOVEADM);
export const dovecotSkipReason = dovecotAvailable ? '' : 'SKIPPED: dovecot is not installed (apt-get install dovecot-imapd, as .ci/run does)';

export interface DovecotServer {
  host: string;
  /** The test user's Maildir (INBOX), for tests and benchmarks that deliver files directly. */
  maildir: string;
  /** uid/gid the mail files must belong to. */
  owner: { uid: number; gid: number };
  port: number;
  user: string;
  password: string;
  /** The temp folder holding config, state, logs and mail. */
  dir: string;
  /** Run doveadm against this instance. */
  doveadm(args: string[]): Promise<string>;
  /** Drop every IMAP connection of the test user (what a server restart or network cut does). */
  kick(): Promise<void>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`dovecot did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function idOf(name: string, flag: '-u' | '-g'): Promise<number> {
  const { stdout } = await run('id', [flag, name]);
  return Number(stdout.trim());
}

/**
 * A private Dovecot on a free loopback port (tests and `npm run bench -- imap`): configuration, state and maildir storage in a temp
 * folder, passwd-file auth, no system service (the configuration of reference/machine-notes.md).
 */
export async function startDovecot(): Promise<DovecotServer> {
  if (!DOVECOT || !DOVEADM) throw new Error(dovecotSkipReason);
  const dir = await mkdtemp(join(tmpdir(), 'repwatch-dovecot-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const asRoot = userInfo().uid === 0;
  const uid = asRoot ? await idOf('dovecot', '-u') : userInfo().uid;
  const gid = asRoot ? await idOf('dovecot', '-g') : userInfo().gid;
  const user = 'fbl';
  const password = 'secret-imap-pass';
  const mail = join(dir, 'mail');
  await mkdir(join(mail, user), { recursive: true });
  if (asRoot) {
    await chown(mail, uid, gid);
    await chown(join(mail, user), uid, gid);
  }
  await writeFile(join(dir, 'users'), `${user}:{PLAIN}${password}:${uid}:${gid}::${join(mail, user)}\n`);
  const conf = join(dir, 'dovecot.conf');
  await writeFile(
    conf,
    `protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
first_valid_uid = ${uid}
${asRoot ? 'default_login_user = dovenull\ndefault_internal_user = dovecot' : `default_login_user = ${userInfo().username}\ndefault_internal_user = ${userInfo().username}`}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
`,
  );
  // dovecot daemonises; its daemon inherits stdio, so wait for the parent's exit, not for the pipes.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(DOVECOT, ['-c', conf], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dovecot exited with ${code}; see ${dir}/dovecot.log`))));
  });
  await waitForPort(port, 15_000);
  const doveadm = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(DOVEADM, ['-c', conf, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`doveadm ${args.join(' ')} exited with ${code}`))));
    });
  return {
    host: '127.0.0.1',
    maildir: join(mail, user, 'Maildir'),
    owner: { uid, gid },
    port,
    user,
    password,
    dir,
    doveadm,
    async kick() {
      await doveadm(['kick', user]).catch(() => undefined);
    },
    log: () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
    async stop() {
      const pidFile = join(dir, 'run', 'master.pid');
      const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
      await doveadm(['stop']).catch(() => undefined);
      // Wait for the master to exit before removing its folder.
      for (let i = 0; pid > 0 && i < 50; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
