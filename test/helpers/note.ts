/**
 * The message the hostile-input tests send raw, and the bad payloads every link kind must
 * take as the peer's fault: one table, so the plain and the secure suites test the same cases.
 */
import { defineMessage, registerMessage } from '../../ts/index.js';

export const Note = defineMessage('Note', { n: 'i', text: 'S' }, { packetType: 101 });
export type Note = InstanceType<typeof Note>;
registerMessage(Note);

/** A packed Note: packet type 101, n (i32), text (u32 length, UTF-8). */
export function note(n: number, text = ''): Buffer {
  const t = Buffer.from(text, 'utf8');
  const b = Buffer.alloc(9 + t.length);
  b[0] = 101;
  b.writeInt32BE(n, 1);
  b.writeUInt32BE(t.length, 5);
  t.copy(b, 9);
  return b;
}

/** [what, payload, error code, message, whether the peer is cut off for it]. */
export const BAD_PAYLOADS: [string, Buffer, string, RegExp, boolean][] = [
  ['a payload of unknown kind', Buffer.from([7, 1, 2]), 'ERR_TSAGE_PEER_PROTOCOL', /unknown kind 7/, true],
  [
    'an announcement that is not JSON',
    Buffer.from('\x01{nope', 'latin1'),
    'ERR_TSAGE_PEER_PROTOCOL',
    /not UTF-8 JSON/,
    true,
  ],
  ['an empty payload', Buffer.alloc(0), 'ERR_TSAGE_PEER_PROTOCOL', /empty payload/, true],
  [
    'a truncated Note',
    note(1, 'hello').subarray(0, 7),
    'ERR_TSAGE_PACKET',
    /Note\.text: bytes end before/,
    false,
  ],
];
