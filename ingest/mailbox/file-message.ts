import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { hashNormalised, keyOf, messageKey, readMessageId } from './message-key.js';
import type { MailboxMessage } from './types.js';

/**
 * One message stored as one file (Maildir, .eml). Files over the size cap are hashed as a stream and
 * their bytes are not kept; only the head is read for the Message-ID.
 */
export async function readMessageFile(path: string, maxMessageBytes: number): Promise<MailboxMessage> {
  const info = await stat(path);
  if (info.size <= maxMessageBytes) {
    const raw = await readFile(path);
    return { ...messageKey(raw), size: raw.length, raw, location: path, deliveredAt: info.mtime };
  }
  const hash = createHash('sha256');
  // A CRLF split across two chunks would hash differently from one in the middle of a chunk: carry a
  // trailing CR over to the next chunk.
  let carry: Buffer | null = null;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let data: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    carry = null;
    if (data[data.length - 1] === 0x0d) {
      carry = data.subarray(data.length - 1);
      data = data.subarray(0, data.length - 1);
    }
    hashNormalised(hash, data);
  }
  if (carry) hash.update(carry);
  const handle = await open(path, 'r');
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(256 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const sha256 = hash.digest('hex');
  const messageId = readMessageId(head);
  return { key: keyOf(messageId, sha256), sha256, messageId, size: info.size, raw: null, location: path, deliveredAt: info.mtime };
}
