/** `mgr.stats` is typed with the counters the code really keeps: the type's lists against the addon's and TCP's. */
import test from 'ava';
import { ActorManager } from '../ts/index.js';
import { netLayout } from '../ts/native.js';
import { NET_SHARED_COUNTERS, SECURE_COUNTERS, TCP_COUNTERS, UDP_COUNTERS } from '../ts/stats.js';

const SHARED = [
  'messagesHeldForSchema',
  'messagesDroppedNoSchema',
  'messagesUndeliverable',
  'messagesDroppedSchemaMismatch',
  'peerErrors',
  'peerDecodeErrors',
  'peerSchemaErrors',
  'peerProtocolErrors',
  'peersDisconnectedForErrors',
];

test('the shared counters are the ones listed for the type', (t) => {
  t.deepEqual([...NET_SHARED_COUNTERS].sort(), [...SHARED].sort());
});

test('UdpCounters names exactly the counters the addon reports (native/src/napi/net.rs COUNTERS)', (t) => {
  t.deepEqual([...UDP_COUNTERS].sort(), [...netLayout().counters].sort());
});

test('SecureCounters names exactly the secure counters the addon reports (native/src/napi/secure.rs)', (t) => {
  t.deepEqual([...SECURE_COUNTERS].sort(), [...netLayout().secureCounters].sort());
});

test('a secure transport holds the shared, the UDP and the secure counters, and no other', async (t) => {
  const mgr = new ActorManager();
  t.teardown(() => mgr.reset());
  await mgr.listen({
    host: '127.0.0.1',
    port: 0,
    secure: { privateKey: new Uint8Array(32), protocolId: 1n },
  });
  t.deepEqual(
    Object.keys(mgr.stats.network!).sort(),
    [...new Set([...SHARED, ...UDP_COUNTERS, ...SECURE_COUNTERS])].sort(),
  );
});

for (const transport of ['udp', 'tcp'] as const) {
  test(`mgr.stats.network holds the shared and the ${transport} counters, and no other [${transport}]`, async (t) => {
    const mgr = new ActorManager();
    t.teardown(() => mgr.reset());
    await mgr.listen({ host: '127.0.0.1', port: 0, transport });
    const own = transport === 'udp' ? UDP_COUNTERS : TCP_COUNTERS;
    t.deepEqual(Object.keys(mgr.stats.network!).sort(), [...new Set([...SHARED, ...own])].sort());
    for (const v of Object.values(mgr.stats.network!)) t.is(typeof v, 'number');
  });
}
