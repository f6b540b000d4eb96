/**
 * What tsage reports through `node:diagnostics_channel`: one channel per kind of
 * happening, named `tsage:<area>:<what>` (docs/observability.md lists each and
 * its message). Every publish is guarded by `hasSubscribers`, so a channel costs
 * one property read where nobody listens; none is published per message.
 */
import { channel } from 'node:diagnostics_channel';

/** Every channel tsage publishes on, by the name subscribers use. */
export const DC = {
  /** `{ address, transport }`: a peer finished its handshake. */
  netConnect: channel('tsage:net:connect'),
  /** `{ address, reason, transport }`: a peer went away. */
  netDisconnect: channel('tsage:net:disconnect'),
  /**
   * A handshake refused: on a listener `{ side: 'server', reason, count, transport }` (`'peer-cap'`,
   * `'bad-cookie'`, `'expired-cookie'`, `'token-required'`, `'not-secure'`, and a secure listener's
   * netcode refusals: `'server-full'`, `'token-expired'`, ...); on a client `{ side: 'client', address,
   * reason, transport }`.
   */
  netRefused: channel('tsage:net:refused'),
  /** `{ retransmissions, fastRetransmits, rtoExpiries }`: what one service of the UDP socket resent. */
  netRetransmit: channel('tsage:net:retransmit'),
  /** `{ peer, pendingBytes, limit }`: a send refused with BackpressureError. */
  netBackpressure: channel('tsage:net:backpressure'),
  /** `{ group, pid, restart }`: a group's process is up (its actor constructed). */
  groupStart: channel('tsage:group:start'),
  /** `{ group, reason, restarts }`: a group's process died and is being restarted. */
  groupRestart: channel('tsage:group:restart'),
  /** `{ group, reason }`: a group failed (the next tick throws its GroupFailed). */
  groupFail: channel('tsage:group:fail'),
  /** `{ group }`: a group was stopped by `removeProcessGroup`. */
  groupStop: channel('tsage:group:stop'),
  /** `{ ring, backlog, limit, bytes, limitBytes }`: a send to a group refused with BackpressureError. */
  groupBackpressure: channel('tsage:group:backpressure'),
  /** `{ event, node?, address?, reason? }`: `nodeJoined`, `nodeLeft`, `groupJoined`, `groupLeft`. */
  clusterMember: channel('tsage:cluster:member'),
  /** `{ event, server?, error? }`: `clusterDisconnected`, `clusterReconnected`, `clusterClosed`. */
  clusterConnection: channel('tsage:cluster:connection'),
  /** The `'messagesLost'` event's payload. */
  clusterLost: channel('tsage:cluster:lost'),
  /** `{ pendingBytes, limit }`: a cluster send refused with BackpressureError. */
  clusterBackpressure: channel('tsage:cluster:backpressure'),
  /** `{ durationMs, dispatched, queued }`: one tick, after it ran. */
  tick: channel('tsage:tick'),
} as const;

/** The names of tsage's channels. */
export const CHANNEL_NAMES: readonly string[] = Object.values(DC).map((c) => String(c.name));
