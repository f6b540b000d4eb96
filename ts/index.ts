/**
 * tsage: actor-based message passing for games and simulations, with a Rust core.
 * This is the package's single public entry point.
 */
export {
  Actor,
  DefaultActor,
  type Handler,
  type HandlerResult,
  type Subscription,
  WILDCARD,
} from './actor.js';
export type { ClusterNode, NodeLeftReason } from './cluster/members.js';
export type { ClusterOptions } from './cluster/options.js';
export { type Codec, compileCodec, type DecodeFn, type EncodeFn, MAX_VARIABLE_BYTES } from './codec.js';
export { defineMessage, type MessageInput, type MessageProps } from './define.js';
export { CHANNEL_NAMES } from './diagnostics.js';
export {
  AbortError,
  BackpressureError,
  ClusterConnectFailed,
  ClusterProtocolError,
  ConcreteMessageAlreadyDefined,
  ConnectFailed,
  DefaultActorFailed,
  GroupAlreadyExists,
  GroupDoesNotExist,
  GroupFailed,
  InvalidMessageProperty,
  InvalidOption,
  ListenFailed,
  NativeLoadError,
  NodeNameTaken,
  NotConnected,
  PacketError,
  PacketTypeError,
  PeerProtocolError,
  RingError,
  TsageError,
  UnknownActor,
  WrongMessageTypeSpecified,
} from './errors.js';
export type {
  ClusterFault,
  ClusterUndeliverable,
  DisconnectReason,
  GroupUndeliverable,
  ManagerEventName,
  ManagerEvents,
  ManagerListener,
  MessagesLost,
  NetUndeliverable,
  PeerErrorEvent,
  Undeliverable,
} from './events.js';
export type { GroupHealth, GroupOptions } from './group/options.js';
export type {
  InspectOptions,
  InspectorHandle,
  InspectorSample,
  PeerSample,
} from './inspect/server.js';
export { ActorManager, type ManagerStats, type StartOptions, type TickLoop } from './manager.js';
export {
  adhocClass,
  Message,
  type MessageClass,
  type MessageOptions,
  type Reliability,
  registerMessage,
  type Schema,
  schemaForName,
  schemaForPacketType,
  schemaOf,
} from './message.js';
export type { NetTransport, PeerStats } from './net/base.js';
export type { ConditionerOptions, NetOptions, SendOptions, TransportKind, Wire } from './net/options.js';
export type { PeerInfo, SecureOptions } from './net/secure.js';
export {
  CONNECT_TOKEN_BYTES,
  CONNECT_TOKEN_KEY_BYTES,
  CONNECT_TOKEN_MAX_SERVERS,
  CONNECT_TOKEN_USER_DATA_BYTES,
  type ConnectTokenOptions,
  generateConnectToken,
} from './net/token.js';
export { childNodeFlags } from './node-flags.js';
export type { Poller } from './poller.js';
export type {
  ClusterStats,
  NetStats,
  NetStatsShared,
  SecureCounters,
  TcpCounters,
  UdpCounters,
} from './stats.js';
export type { TypeCode } from './types.js';
