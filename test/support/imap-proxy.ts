import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback in front of the test Dovecot, for the IMAP tests: it can cut a connection at
 * an exact point of the conversation (in the middle of a FETCH reply, right after a MOVE reached the
 * server), which `doveadm kick` cannot aim at. It reads the client's command lines, so it only works
 * on plain-text IMAP without COMPRESS (the test Dovecot offers neither TLS nor COMPRESS).
 */
export interface CutRule {
  /** Matched against each command line the client sends (tag included), e.g. /UID MOVE/. */
  command: RegExp;
  /** Cut at the nth matching command counted from when the rule was armed (default 1). */
  nth?: number;
  /**
   * null: that command is swallowed (it never reaches the server) and the connection is cut.
   * A number: the command reaches the server, that many bytes of what the server sends next reach
   * the client, and the connection is cut as soon as more arrives (0: the server ran the command
   * and its reply is lost).
   */
  replyBytes: number | null;
}

export interface ImapProxy {
  host: string;
  port: number;
  /** Arm a cut (replacing any armed one); it fires once. */
  cutAt(rule: CutRule): void;
  /** Connections cut so far, and connections opened through the proxy. */
  readonly cuts: number;
  /** The last cut: the command it was aimed at, the reply bytes that got through, and whether the
   * server's tagged completion of that command was among them (false: the cut was inside the reply). */
  readonly lastCut: { command: string; replyBytes: number; completed: boolean } | null;
  readonly connections: number;
  /** Everything clients sent through the proxy, as latin1 text. */
  readonly clientText: string;
  close(): Promise<void>;
}

export async function startImapProxy(target: { host: string; port: number }): Promise<ImapProxy> {
  const sockets = new Set<Socket>();
  let rule: (CutRule & { seen: number }) | null = null;
  let cuts = 0;
  let lastCut: ImapProxy['lastCut'] = null;
  let connections = 0;
  let clientText = '';

  const server = createServer((client) => {
    connections += 1;
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let partial = '';
    /** Bytes of the server's reply still let through before the cut (null: not cutting). */
    let budget: number | null = null;
    let isCut = false;
    /** The command being cut and the reply text let through so far (latin1). */
    let aimed: { command: string; reply: string } | null = null;
    const cut = () => {
      if (isCut) return;
      isCut = true;
      cuts += 1;
      if (aimed) {
        const tag = aimed.command.split(' ')[0] ?? '';
        const completed = new RegExp(`(^|\r\n)${tag.replace(/[^A-Za-z0-9]/g, '\\$&')} (OK|NO|BAD)`).test(aimed.reply);
        lastCut = { command: aimed.command, replyBytes: Buffer.byteLength(aimed.reply, 'latin1'), completed };
      }
      client.destroy();
      upstream.destroy();
    };

    client.on('data', (chunk: Buffer) => {
      if (isCut || upstream.destroyed) return;
      const text = chunk.toString('latin1');
      clientText += text;
      const lines = (partial + text).split('\r\n');
      partial = (lines.pop() ?? '').slice(-10_000);
      const armed = rule;
      const hit = armed && budget === null ? lines.find((line) => armed.command.test(line) && ++armed.seen === (armed.nth ?? 1)) : undefined;
      if (armed && hit !== undefined) {
        rule = null;
        aimed = { command: hit, reply: '' };
        if (armed.replyBytes === null) {
          cut();
          return;
        }
        budget = armed.replyBytes;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (isCut || client.destroyed) return;
      if (budget === null) {
        client.write(chunk);
        return;
      }
      if (chunk.length <= budget) {
        budget -= chunk.length;
        if (aimed) aimed.reply += chunk.toString('latin1');
        client.write(chunk);
        return;
      }
      const head = chunk.subarray(0, budget);
      budget = 0;
      if (aimed) aimed.reply += head.toString('latin1');
      if (head.length === 0) {
        cut();
        return;
      }
      client.write(head, () => cut());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    host: '127.0.0.1',
    port,
    cutAt(next) {
      rule = { ...next, seen: 0 };
    },
    get cuts() {
      return cuts;
    },
    get lastCut() {
      return lastCut;
    },
    get connections() {
      return connections;
    },
    get clientText() {
      return clientText;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
