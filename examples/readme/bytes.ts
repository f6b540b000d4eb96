import { defineMessage } from 'tsage';

// pysage's strings are bytes: these two decode as Uint8Array, bytes kept exactly (an Ns's NULs too).
const Blob = defineMessage('Blob', { tag: '4s', data: 'S' }, { packetType: 125, bytes: ['tag', 'data'] });
const back = Blob.fromBytes(new Blob({ tag: 'ab', data: Uint8Array.of(0, 255) }).toBytes());
console.log([...back.tag].join(' '), '|', [...back.data].join(' ')); // 97 98 0 0 | 0 255
