/**
 * generateConnectToken: the options it refuses (InvalidOption naming the
 * option), and tokens that an independent reader (node:crypto) decrypts to
 * exactly what was asked, including the reference implementation's vector.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  CONNECT_TOKEN_BYTES,
  type ConnectTokenOptions,
  generateConnectToken,
  InvalidOption,
  NativeLoadError,
} from '../ts/index.js';
import { native } from '../ts/native.js';
import { decodeToken, hchacha20, normaliseAddress } from './helpers/netcode.js';
import { seededRng } from './helpers/rng.js';

const privateKey = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 ^ i);
const base: ConnectTokenOptions = {
  privateKey,
  protocolId: 0x1122334455667788n,
  clientId: 42n,
  serverAddresses: ['127.0.0.1:40000'],
};

test('HChaCha20 of the test helper matches draft-irtf-cfrg-xchacha', (t) => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const nonce = Buffer.from('000000090000004a0000000031415927', 'hex');
  t.is(
    Buffer.from(hchacha20(key, nonce)).toString('hex'),
    '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc',
  );
});

test("the test reader decrypts the reference implementation's token", (t) => {
  const line = readFileSync(new URL('./fixtures/netcode/vectors.txt', import.meta.url), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('TOKEN '))!;
  const token = Buffer.from(line.split(/\s+/)[2]!, 'hex');
  const d = decodeToken(
    token,
    Uint8Array.from({ length: 32 }, (_, i) => i),
  );
  t.is(d.protocolId, 0x1234567890abcdefn);
  t.is(d.expireTimestamp - d.createTimestamp, 45n);
  t.is(d.private.clientId, 0x1122334455667788n);
  t.deepEqual(d.private.serverAddresses, ['127.0.0.1:40000', '[::1]:40001']);
  t.deepEqual(
    [...d.private.userData],
    Array.from({ length: 256 }, (_, i) => 255 - i),
  );
});

test('a token decrypts to the fields asked for, with the defaults', (t) => {
  const before = BigInt(Math.floor(Date.now() / 1000));
  const token = generateConnectToken(base);
  const after = BigInt(Math.ceil(Date.now() / 1000));
  t.true(token instanceof Uint8Array);
  t.is(token.length, CONNECT_TOKEN_BYTES);
  const d = decodeToken(token, privateKey);
  t.is(d.version, 'NETCODE 1.02\0');
  t.is(d.protocolId, 0x1122334455667788n);
  t.true(d.createTimestamp >= before && d.createTimestamp <= after);
  t.is(d.expireTimestamp - d.createTimestamp, 30n);
  t.is(d.timeoutSeconds, 10);
  t.deepEqual(d.serverAddresses, ['127.0.0.1:40000']);
  t.true(d.publicPadding.every((b) => b === 0));
  t.is(d.private.clientId, 42n);
  t.is(d.private.timeoutSeconds, 10);
  t.deepEqual(d.private.serverAddresses, ['127.0.0.1:40000']);
  t.deepEqual(d.private.clientToServerKey, d.clientToServerKey);
  t.deepEqual(d.private.serverToClientKey, d.serverToClientKey);
  t.notDeepEqual(d.clientToServerKey, d.serverToClientKey);
  t.true(d.private.userData.every((b) => b === 0));
  t.true(d.private.padding.every((b) => b === 0));
});

test('a token carries every option given: 32 addresses, 256 bytes of user data, extreme ids', (t) => {
  const rng = seededRng(t);
  const serverAddresses = Array.from({ length: 32 }, (_, i) =>
    i % 2 === 0
      ? `10.0.${i}.${rng.int(0, 255)}:${rng.int(1, 65535)}`
      : `[fe80::${i.toString(16)}:1]:${rng.int(1, 65535)}`,
  );
  const userData = Uint8Array.from({ length: 256 }, () => rng.int(0, 255));
  const options = { ...base, serverAddresses, userData, expireSeconds: 3600, timeoutSeconds: -1 };
  for (const [protocolId, clientId] of [
    [0n, (1n << 64n) - 1n],
    [(1n << 64n) - 1n, 0n],
  ] as const) {
    const d = decodeToken(generateConnectToken({ ...options, protocolId, clientId }), privateKey);
    t.is(d.protocolId, protocolId);
    t.is(d.private.clientId, clientId);
    t.is(d.expireTimestamp - d.createTimestamp, 3600n);
    t.is(d.timeoutSeconds, -1);
    t.is(d.private.timeoutSeconds, -1);
    t.deepEqual(d.serverAddresses, serverAddresses.map(normaliseAddress));
    t.deepEqual(d.private.serverAddresses, serverAddresses.map(normaliseAddress));
    t.deepEqual([...d.private.userData], [...userData]);
  }
});

test('short user data is zero padded', (t) => {
  const d = decodeToken(generateConnectToken({ ...base, userData: Uint8Array.of(1, 2, 3) }), privateKey);
  t.deepEqual([...d.private.userData.subarray(0, 4)], [1, 2, 3, 0]);
  t.true(d.private.userData.subarray(3).every((b) => b === 0));
});

test('each token has its own nonce and keys, and only its private key opens it', (t) => {
  const a = generateConnectToken(base);
  const b = generateConnectToken(base);
  t.notDeepEqual(Buffer.from(a.subarray(37, 61)), Buffer.from(b.subarray(37, 61)));
  t.notDeepEqual(decodeToken(a, privateKey).clientToServerKey, decodeToken(b, privateKey).clientToServerKey);
  const wrong = Uint8Array.from(privateKey, (x, i) => (i === 31 ? x ^ 1 : x));
  t.throws(() => decodeToken(a, wrong), { message: /authenticate/ });
  const tampered = Uint8Array.from(a);
  tampered[29]! ^= 1;
  t.throws(
    () => decodeToken(tampered, privateKey),
    { message: /authenticate/ },
    'the expiry is authenticated',
  );
});

const BAD: [string, Partial<Record<keyof ConnectTokenOptions, unknown>>, RegExp][] = [
  ['a short key', { privateKey: new Uint8Array(31) }, /privateKey must be a Uint8Array of 32 bytes, got 31/],
  ['a long key', { privateKey: new Uint8Array(33) }, /privateKey .* got 33/],
  ['a key that is not bytes', { privateKey: 'secret' }, /privateKey must be a Uint8Array/],
  ['a key in another typed array', { privateKey: new Uint32Array(8) }, /privateKey must be a Uint8Array/],
  ['a number protocol id', { protocolId: 5 }, /protocolId must be a bigint from 0 to 2\^64-1, got 5/],
  ['a negative protocol id', { protocolId: -1n }, /protocolId must be a bigint/],
  ['a 65-bit protocol id', { protocolId: 1n << 64n }, /protocolId must be a bigint/],
  ['a missing client id', { clientId: undefined }, /clientId must be a bigint/],
  ['a negative client id', { clientId: -5n }, /clientId must be a bigint/],
  ['no server addresses', { serverAddresses: [] }, /serverAddresses must be an array of 1 to 32/],
  [
    '33 server addresses',
    { serverAddresses: Array(33).fill('1.2.3.4:5') },
    /serverAddresses must be an array/,
  ],
  ['a string for addresses', { serverAddresses: '1.2.3.4:5' }, /serverAddresses must be an array/],
  ['a host name', { serverAddresses: ['localhost:40000'] }, /"localhost:40000" is not ip:port/],
  ['no port', { serverAddresses: ['127.0.0.1'] }, /"127.0.0.1" is not ip:port/],
  ['port 0', { serverAddresses: ['127.0.0.1:0'] }, /is not ip:port/],
  ['port 65536', { serverAddresses: ['127.0.0.1:65536'] }, /is not ip:port/],
  ['IPv6 without brackets', { serverAddresses: ['::1:40000'] }, /is not ip:port/],
  ['an IPv6 zone', { serverAddresses: ['[fe80::1%eth0]:40000'] }, /is not ip:port/],
  ['a bad IPv4', { serverAddresses: ['256.0.0.1:1'] }, /is not ip:port/],
  ['a number address', { serverAddresses: [40000] }, /40000 is not ip:port/],
  ['expireSeconds 0', { expireSeconds: 0 }, /expireSeconds must be an integer from 1 to 2\^31-1, got 0/],
  ['expireSeconds 1.5', { expireSeconds: 1.5 }, /expireSeconds must be an integer/],
  ['expireSeconds -1', { expireSeconds: -1 }, /expireSeconds must be an integer/],
  ['expireSeconds 2^31', { expireSeconds: 2 ** 31 }, /expireSeconds must be an integer/],
  ['timeoutSeconds 0', { timeoutSeconds: 0 }, /timeoutSeconds must be an integer from 1 to 2\^31-1, or -1/],
  ['timeoutSeconds -2', { timeoutSeconds: -2 }, /timeoutSeconds must be an integer/],
  ['timeoutSeconds NaN', { timeoutSeconds: Number.NaN }, /timeoutSeconds must be an integer/],
  [
    'userData of 257 bytes',
    { userData: new Uint8Array(257) },
    /userData must be a Uint8Array of at most 256 bytes, got 257/,
  ],
  ['userData that is not bytes', { userData: [1, 2] }, /userData must be a Uint8Array/],
];

for (const [what, change, message] of BAD) {
  test(`generateConnectToken refuses ${what}`, (t) => {
    const options = { ...base, ...change } as ConnectTokenOptions;
    t.throws(() => generateConnectToken(options), {
      instanceOf: InvalidOption,
      code: 'ERR_TSAGE_INVALID_OPTION',
      message,
    });
  });
}

test('generateConnectToken refuses options that are not an object', (t) => {
  for (const v of [undefined, null, 5, 'x']) {
    t.throws(() => generateConnectToken(v as never), {
      code: 'ERR_TSAGE_INVALID_OPTION',
      message: /options must be an object/,
    });
  }
});

test('the native export checks its own arguments, naming each', (t) => {
  const n = native();
  const id = new Uint8Array(8);
  const good = [privateKey, id, id, '127.0.0.1:1', 30, 10, new Uint8Array(0)] as const;
  const cases: [number, unknown, RegExp][] = [
    [0, new Uint16Array(16), /privateKey must be a Uint8Array/],
    [0, new Uint8Array(16), /privateKey must be 32 bytes, got 16/],
    [1, new Uint8Array(7), /protocolId must be 8 little-endian bytes, got 7/],
    [2, 'x', /clientId must be a Uint8Array/],
    [3, '127.0.0.1:1\nnowhere', /serverAddresses: "nowhere" is not ip:port/],
    [3, '', /serverAddresses: "" is not ip:port/],
    [3, Array(33).fill('1.2.3.4:5').join('\n'), /serverAddresses must hold 1 to 32 addresses, got 33/],
    [4, -1, /expireSeconds must be an integer/],
    [5, 1.5, /timeoutSeconds must be a 32-bit integer/],
    [6, new Uint8Array(257), /userData must be at most 256 bytes, got 257/],
  ];
  for (const [i, value, message] of cases) {
    const args = [...good] as unknown[];
    args[i] = value;
    t.throws(() => (n.netcodeGenerateToken as (...a: unknown[]) => unknown)(...args), {
      code: 'ERR_TSAGE_NATIVE_ARG',
      message,
    });
  }
  t.is(new Uint8Array(n.netcodeGenerateToken(...good)).length, CONNECT_TOKEN_BYTES);
});

test('a Node without the OpenSSL symbols gives a NativeLoadError naming the symbol', (t) => {
  const n = native();
  const real = n.netcodeGenerateToken;
  n.netcodeGenerateToken = () => {
    throw Object.assign(new Error('tsage netcode: OpenSSL symbol EVP_chacha20_poly1305 was not found'), {
      code: 'ERR_TSAGE_NATIVE_LOAD',
    });
  };
  try {
    t.throws(() => generateConnectToken(base), {
      instanceOf: NativeLoadError,
      code: 'ERR_TSAGE_NATIVE_LOAD',
      message: /EVP_chacha20_poly1305/,
    });
  } finally {
    n.netcodeGenerateToken = real;
  }
});
