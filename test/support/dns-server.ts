import { createSocket, type Socket } from 'node:dgram';

/**
 * A tiny authoritative DNS responder on 127.0.0.1 (UDP, a free port) for DNSBL and SPF/DKIM/DMARC
 * tests: A and TXT answers from a table, NXDOMAIN for unknown names, and names that are answered with
 * REFUSED or SERVFAIL, or never answered (to test timeouts). Real DNS wire format, so node:dns and
 * mailauth talk to it exactly as they would to a real server.
 */

export interface DnsRecords {
  A?: string[];
  AAAA?: string[];
  /** Each TXT record is one or more strings (long records are split into 255-byte strings). */
  TXT?: string[][] | string[];
  MX?: { priority: number; exchange: string }[];
  /** Answer this name with an error code instead of records. */
  rcode?: 'REFUSED' | 'SERVFAIL';
  /** Never answer (the client times out). */
  drop?: boolean;
}

export interface DnsServer {
  port: number;
  /** `127.0.0.1:port`, for --resolver and node:dns setServers. */
  address: string;
  /** Every question received, `name TYPE`, in order. */
  queries: string[];
  set(name: string, records: DnsRecords): void;
  close(): Promise<void>;
}

const TYPES: Record<number, string> = { 1: 'A', 15: 'MX', 16: 'TXT', 28: 'AAAA', 255: 'ANY' };
const RCODES = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export async function startDnsServer(initial: Record<string, DnsRecords> = {}): Promise<DnsServer> {
  const table = new Map<string, DnsRecords>();
  for (const [name, records] of Object.entries(initial)) table.set(normalise(name), records);
  const queries: string[] = [];
  const socket: Socket = createSocket('udp4');

  socket.on('message', (msg, rinfo) => {
    let question: { id: number; name: string; type: number; end: number } | null;
    try {
      question = readQuestion(msg);
    } catch {
      return;
    }
    if (!question) return;
    const typeName = TYPES[question.type] ?? String(question.type);
    queries.push(`${question.name} ${typeName}`);
    const records = table.get(question.name);
    if (records?.drop) return;
    let rcode: number = RCODES.NOERROR;
    const answers: Buffer[] = [];
    if (!records) {
      // A name that exists with other types answers NOERROR/empty; one that does not, NXDOMAIN.
      rcode = RCODES.NXDOMAIN;
    } else if (records.rcode) {
      rcode = RCODES[records.rcode];
    } else {
      if (question.type === 1) for (const ip of records.A ?? []) answers.push(answer(1, Buffer.from(ip.split('.').map(Number))));
      if (question.type === 28) for (const ip of records.AAAA ?? []) answers.push(answer(28, ipv6Bytes(ip)));
      if (question.type === 16) for (const txt of records.TXT ?? []) answers.push(answer(16, txtBytes(Array.isArray(txt) ? txt : [txt])));
      if (question.type === 15) for (const mx of records.MX ?? []) answers.push(answer(15, Buffer.concat([u16(mx.priority), encodeName(mx.exchange)])));
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(question.id, 0);
    header.writeUInt16BE(0x8400 | 0x0100 | 0x0080 | rcode, 2); // QR, AA, RD copied, RA
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([header, msg.subarray(12, question.end), ...answers]), rinfo.port, rinfo.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    queries,
    set: (name, records) => void table.set(normalise(name), records),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function readQuestion(msg: Buffer): { id: number; name: string; type: number; end: number } | null {
  if (msg.length < 17 || msg.readUInt16BE(4) < 1) return null;
  const labels: string[] = [];
  let offset = 12;
  for (;;) {
    const len = msg[offset]!;
    offset += 1;
    if (len === 0) break;
    labels.push(msg.toString('latin1', offset, offset + len));
    offset += len;
  }
  const type = msg.readUInt16BE(offset);
  return { id: msg.readUInt16BE(0), name: normalise(labels.join('.')), type, end: offset + 4 };
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function answer(type: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function txtBytes(strings: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of strings) {
    const bytes = Buffer.from(s, 'utf8');
    for (let i = 0; i < bytes.length || i === 0; i += 255) {
      const chunk = bytes.subarray(i, i + 255);
      parts.push(Buffer.from([chunk.length]), chunk);
      if (bytes.length === 0) break;
    }
  }
  return Buffer.concat(parts);
}

function encodeName(name: string): Buffer {
  const parts = normalise(name).split('.').filter(Boolean).map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}
