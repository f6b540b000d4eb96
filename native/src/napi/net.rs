//! Exports for the reliable-UDP transport ([`crate::net`]).
//!
//! One call per tick, [`service`], moves a whole batch each way: it takes the
//! messages JavaScript packed into a send buffer ([`crate::net::batch`]), runs
//! the socket and the protocol, and writes events (connections, messages, what
//! became of the sends) into an out buffer. Nothing here is called per message.
//!
//! Every layout that crosses to JavaScript is defined in Rust and exported by
//! [`layout`] (`netLayout()`): the event tags and offsets (`net/events.rs`),
//! the send-entry header (`net/batch.rs`) and the codes of its reliability
//! modes, the number of channels, the slots of the service's result
//! array and the names of its counters ([`COUNTERS`]), and the names of the
//! configuration fields `netOpen` and `netSetConditioner` take.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::buf::check_disjoint;
use super::handles::{Handles, MAX_HANDLE};
use super::secure;
use super::sys::napi_value;
use super::{arg, Env, JsError, Result};
use crate::net::batch::{
    SendBatch, ENTRY_CHANNEL, ENTRY_FLAGS, ENTRY_HEADER, ENTRY_LENGTH, ENTRY_PEER, ENTRY_RELIABILITY, FLAG_CONTROL,
};
use crate::net::events::{self, Events, DISCONNECT_REASONS, FAULT_KINDS, REFUSAL_REASONS};
use crate::net::{
    ConditionerConfig, ConditionerStats, Config, Driver, PeerInfo, Reliability, Stats, CHANNELS, SECURE_FRAMING,
    SECURE_MAX_DATAGRAM,
};

pub(super) struct Slot {
    pub(super) driver: Driver,
    batch: SendBatch,
    /// What became of the last send batch, handed out before the endpoint's events.
    report: Events,
    /// The last call left events for the next one (which then only hands them out).
    draining: bool,
}

thread_local! {
    static SLOTS: Handles<Slot> = const { Handles::new() };
    static EPOCH: Instant = Instant::now();
}

pub(super) fn now_ms() -> u64 {
    EPOCH.with(|e| e.elapsed().as_millis() as u64)
}

pub(super) fn with_slot<T>(env: &Env, h: napi_value, f: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
    let h = env.get_uint(h, "net handle", MAX_HANDLE)?;
    SLOTS.with(|s| s.with(h, "net", f))
}

fn parse_addr(host: &str, port: u64) -> Result<SocketAddr> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| JsError::arg(format!("'{host}' is not an IP address (resolve host names first)")))?;
    Ok(SocketAddr::new(ip, port as u16))
}

/// The largest integer a configuration field takes (every field is clamped further by the protocol).
const MAX_FIELD: f64 = 9_007_199_254_740_991.0;

/// How a named configuration field is read and stored.
enum Field<C> {
    /// A non-negative integer.
    Int(fn(&mut C, u64)),
    /// A probability, 0 to 1.
    Prob(fn(&mut C, f64)),
    /// A boolean.
    Bool(fn(&mut C, bool)),
}

/// The fields of `netOpen`'s config, by the names JavaScript passes. Absent ones keep their defaults.
const CONFIG: &[(&str, Field<Config>)] = &[
    ("mtu", Field::Int(|c, x| c.mtu = x as usize)),
    ("maxMessageSize", Field::Int(|c, x| c.max_message_size = x as usize)),
    ("maxPeers", Field::Int(|c, x| c.max_peers = x as usize)),
    ("maxPeersPerIp", Field::Int(|c, x| c.max_peers_per_ip = x as usize)),
    ("timeoutMs", Field::Int(|c, x| c.timeout_ms = x)),
    ("keepaliveMs", Field::Int(|c, x| c.keepalive_ms = x)),
    ("rtoMinMs", Field::Int(|c, x| c.rto_min_ms = x)),
    ("rtoMaxMs", Field::Int(|c, x| c.rto_max_ms = x)),
    ("rtoInitialMs", Field::Int(|c, x| c.rto_initial_ms = x)),
    (
        "maxInFlightBytes",
        Field::Int(|c, x| c.max_in_flight_bytes = x as usize),
    ),
    (
        "maxInFlightPackets",
        Field::Int(|c, x| c.max_in_flight_packets = x as usize),
    ),
    ("maxQueuedBytes", Field::Int(|c, x| c.max_queued_bytes = x as usize)),
    (
        "maxReassemblyBytes",
        Field::Int(|c, x| c.max_reassembly_bytes = x as usize),
    ),
    ("maxBufferedBytes", Field::Int(|c, x| c.max_buffered_bytes = x as usize)),
    ("maxEventBytes", Field::Int(|c, x| c.max_event_bytes = x as usize)),
    ("ackDelayMs", Field::Int(|c, x| c.ack_delay_ms = x)),
    (
        "ackEvery",
        Field::Int(|c, x| c.ack_every = x.min(u32::MAX as u64) as u32),
    ),
    (
        "fastRetransmitThreshold",
        Field::Int(|c, x| c.fast_retransmit_threshold = x.min(u16::MAX as u64) as u16),
    ),
    ("cookieLifetimeMs", Field::Int(|c, x| c.cookie_lifetime_ms = x)),
    ("acceptIncoming", Field::Bool(|c, b| c.accept_incoming = b)),
    ("pysageWire", Field::Bool(|c, b| c.pysage_wire = b)),
];

/// The fields of `netSetConditioner`'s config.
const CONDITIONER: &[(&str, Field<ConditionerConfig>)] = &[
    ("loss", Field::Prob(|c, x| c.loss = x)),
    ("duplicate", Field::Prob(|c, x| c.duplicate = x)),
    ("reorder", Field::Prob(|c, x| c.reorder = x)),
    ("delayMs", Field::Int(|c, x| c.delay_ms = x)),
    ("jitterMs", Field::Int(|c, x| c.jitter_ms = x)),
    ("seed", Field::Int(|c, x| c.seed = x)),
    ("maxQueued", Field::Int(|c, x| c.max_queued = x as usize)),
];

/// Reads a plain object of named fields into `c`; `what` names it in errors. An unknown
/// field is an error, so a name TypeScript and Rust disagree on never goes unnoticed.
fn fields<C>(env: &Env, v: napi_value, what: &str, table: &[(&str, Field<C>)], c: &mut C) -> Result<()> {
    for key in env.keys(v, what)? {
        let Some((_, field)) = table.iter().find(|(name, _)| *name == key) else {
            let known: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            return Err(JsError::arg(format!(
                "{what} has no field '{key}' (it takes {})",
                known.join(", ")
            )));
        };
        let Some(x) = env.get(v, &key)? else { continue };
        let name = format!("{what}.{key}");
        match field {
            Field::Int(set) => set(c, env.get_uint(x, &name, MAX_FIELD)?),
            Field::Bool(set) => set(c, env.get_bool(x, &name)?),
            Field::Prob(set) => {
                let p = env.get_f64(x, &name)?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(JsError::arg(format!(
                        "{name} must be a probability from 0 to 1, got {p}"
                    )));
                }
                set(c, p);
            }
        }
    }
    Ok(())
}

/// `netOpen(host, port, config, seed, secure) -> handle`: binds a UDP socket. `config` is a
/// plain object of the fields in [`CONFIG`]; absent ones keep the protocol's defaults.
/// `secure` (optional) is null for the plain link, or what [`secure::mode`] reads for netcode.
pub fn open(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let host = env.get_string(arg(args, 0, "host")?, "host")?;
    let port = env.get_uint(arg(args, 1, "port")?, "port", 65535.0)?;
    let mut config = Config::default();
    fields(env, arg(args, 2, "config")?, "config", CONFIG, &mut config)?;
    let seed = env.get_f64(arg(args, 3, "seed")?, "seed")?.to_bits();
    let mode = match args.get(4) {
        Some(&v) => secure::mode(env, v)?,
        None => secure::Mode::Plain,
    };
    let addr = parse_addr(&host, port)?;
    let bind = |e| JsError::io(&format!("bind {addr}"), e);
    let socket = Driver::socket(addr).map_err(bind)?;
    let local = socket.local_addr().map_err(bind)?;
    let endpoint = secure::endpoint(mode, config, seed, local)?;
    let driver = Driver::with_socket(socket, endpoint).map_err(bind)?;
    let slot = Slot {
        driver,
        batch: SendBatch::default(),
        report: Events::default(),
        draining: false,
    };
    let h = SLOTS.with(|s| s.insert(slot))?;
    env.double(h as f64)
}

/// `netLocalAddress(h) -> "ip:port"` (IPv6 in brackets).
pub fn local_address(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let a = with_slot(env, arg(args, 0, "h")?, |s| Ok(s.driver.local_addr()))?;
    env.string(&a.to_string())
}

/// `netConnect(h, ip, port) -> peer`: starts a handshake; a Connected event follows.
pub fn connect(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let host = env.get_string(arg(args, 1, "host")?, "host")?;
    let port = env.get_uint(arg(args, 2, "port")?, "port", 65535.0)?;
    let addr = parse_addr(&host, port)?;
    let peer = with_slot(env, arg(args, 0, "h")?, |s| {
        s.driver
            .endpoint()
            .connect(now_ms(), addr)
            .map_err(|e| JsError::new("ERR_TSAGE_NET", format!("connect to {addr}: {e}")))
    })?;
    env.double(peer as f64)
}

/// `netDisconnect(h, peer)`: sends a disconnect and forgets the peer.
pub fn disconnect(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let peer = env.get_uint(arg(args, 1, "peer")?, "peer", u32::MAX as f64)? as u32;
    with_slot(env, arg(args, 0, "h")?, |s| {
        s.driver.endpoint().disconnect(now_ms(), peer);
        Ok(())
    })?;
    env.undefined()
}

/// `netSetConditioner(h, config | null)`: installs or changes (a plain object of the fields in
/// [`CONDITIONER`]) or removes (`null`) the link conditioner on outgoing datagrams.
pub fn set_conditioner(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let v = arg(args, 1, "config")?;
    let cfg = if env.is_nullish(v)? {
        None
    } else {
        let mut c = ConditionerConfig::default();
        fields(env, v, "conditioner", CONDITIONER, &mut c)?;
        Some(c)
    };
    with_slot(env, arg(args, 0, "h")?, |s| {
        s.driver.set_conditioner(cfg);
        Ok(())
    })?;
    env.undefined()
}

/// The counters a service reports, from one snapshot.
struct Counters<'a> {
    e: &'a Stats,
    send_errors: u64,
    cond: ConditionerStats,
    peers: u64,
    buffered: u64,
}

/// Reads one counter from a snapshot.
type Counter = fn(&Counters<'_>) -> u64;

/// The counters a service writes into its result array, in order: the name TypeScript shows
/// them under (`mgr.stats.network`) and where each comes from.
#[rustfmt::skip]
const COUNTERS: &[(&str, Counter)] = &[
    ("datagramsIn", |c| c.e.datagrams_in),
    ("datagramsOut", |c| c.e.datagrams_out),
    ("bytesIn", |c| c.e.bytes_in),
    ("bytesOut", |c| c.e.bytes_out),
    ("messagesSent", |c| c.e.messages_sent),
    ("messagesDelivered", |c| c.e.messages_delivered),
    ("retransmissions", |c| c.e.retransmissions),
    ("fastRetransmits", |c| c.e.fast_retransmits),
    ("rtoExpiries", |c| c.e.rto_expiries),
    ("acksSent", |c| c.e.acks_sent),
    ("pingsSent", |c| c.e.pings_sent),
    ("connections", |c| c.e.connections),
    ("droppedGarbled", |c| c.e.drop_garbled),
    ("droppedBadChecksum", |c| c.e.drop_bad_checksum),
    ("droppedStranger", |c| c.e.drop_stranger),
    ("droppedWrongConnectionId", |c| c.e.drop_wrong_connection_id),
    ("droppedBadCookie", |c| c.e.drop_bad_cookie),
    ("droppedExpiredCookie", |c| c.e.drop_expired_cookie),
    ("droppedDuplicate", |c| c.e.drop_duplicate),
    ("droppedStale", |c| c.e.drop_stale),
    ("droppedAbsurdFragment", |c| c.e.drop_absurd_fragment),
    ("droppedReplayedConnect", |c| c.e.drop_replayed_connect),
    ("droppedPeerCap", |c| c.e.drop_peer_cap),
    ("droppedIpCap", |c| c.e.drop_ip_cap),
    ("droppedReassemblyCap", |c| c.e.drop_reassembly_cap),
    ("droppedEventBacklog", |c| c.e.drop_event_backlog),
    ("droppedUnreliablePartial", |c| c.e.drop_unreliable_partial),
    ("refusedTokenRequired", |c| c.e.refused_token_required),
    ("refusedNotSecure", |c| c.e.refused_not_secure),
    ("droppedUnsealable", |c| c.e.drop_unsealable),
    ("socketSendErrors", |c| c.send_errors),
    ("conditionerLost", |c| c.cond.lost),
    ("conditionerDuplicated", |c| c.cond.duplicated),
    ("conditionerReordered", |c| c.cond.reordered),
    ("peers", |c| c.peers),
    ("bufferedBytes", |c| c.buffered),
];

/// Result slot: 1 while more events wait (call again with `sendLen` 0), else 0.
const RESULT_MORE: usize = 0;
/// Result slot: bytes of send entries left waiting at the front of the send buffer.
const RESULT_KEPT: usize = 1;
/// Result slot of the first counter.
const RESULT_COUNTERS: usize = 2;
/// Result slot of the first secure (netcode) counter, after the others.
const RESULT_SECURE: usize = RESULT_COUNTERS + COUNTERS.len();
/// Elements of the result array.
const RESULT_LEN: usize = RESULT_SECURE + secure::COUNTER_SLOTS;

/// `netService(h, send, sendLen, out, maxDatagrams, result) -> outLen`.
///
/// Hands the entries in `send[0..sendLen)` to the protocol (`net/batch.rs`), reads up to
/// `maxDatagrams` datagrams, runs timers and sends what is due; then moves the entries left
/// waiting to the front of `send` (their length goes in `result[1]`) and copies whole events
/// into `out`: first what became of the batch (a pending event per peer in it, refusals), then
/// the endpoint's. Returns the bytes written to `out`, or minus the size of the next event when
/// `out` is empty and too small for it. `result[0]` is 1 while more events wait (call again with
/// `sendLen` 0), then come the counters. `result[1]` is written whenever the batch was taken
/// (even if the socket then fails), and left as it was if the call fails before.
pub fn service(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let send = env.uint8_array(arg(args, 1, "send")?, "send")?;
    let send_len = env.get_uint(arg(args, 2, "sendLen")?, "sendLen", send.len() as f64)? as usize;
    let send = send.prefix(send_len);
    let out = env.uint8_array(arg(args, 3, "out")?, "out")?;
    let max_datagrams = env.get_uint(arg(args, 4, "maxDatagrams")?, "maxDatagrams", 1e9)? as usize;
    let result = env
        .float64_array(arg(args, 5, "result")?, "result", RESULT_LEN)?
        .prefix(RESULT_LEN);
    check_disjoint(&[
        ("send", send.byte_range()),
        ("out", out.byte_range()),
        ("result", result.byte_range()),
    ])?;
    // SAFETY: the three are typed arrays alive for this call, pairwise disjoint (checked), and
    // nothing else reads or writes them during it (no JavaScript runs until it returns).
    let (send, out, result) = unsafe { (send.as_mut_slice(), out.as_mut_slice(), result.as_mut_slice()) };
    let written = with_slot(env, arg(args, 0, "h")?, |s| {
        let now = now_ms();
        s.driver.endpoint().set_unix_time(secure::unix_now());
        // Only a call that finds nothing left over runs the socket; the others hand out what is left.
        let fresh = !s.draining;
        if !send.is_empty() {
            s.batch
                .queue(now, s.driver.endpoint(), send)
                .map_err(|e| JsError::arg(format!("send entry at {}: {}", e.at, e.what)))?;
        }
        let serviced = if fresh {
            s.driver.service(now, max_datagrams).map(drop)
        } else {
            Ok(())
        };
        if !send.is_empty() {
            result[RESULT_KEPT] = s.batch.settle(s.driver.endpoint(), send, &mut s.report) as f64;
        }
        serviced.map_err(|e| JsError::io("UDP socket", e))?;
        let mut w = s.report.drain_into(out);
        if s.report.backlog() == 0 {
            w += s.driver.endpoint().drain_encoded(&mut out[w..]);
        }
        let next = s.report.next_len().or_else(|| s.driver.endpoint().next_encoded_len());
        s.draining = next.is_some();
        write_counters(s, result);
        Ok(match next {
            // Nothing fits: the caller needs a buffer of at least this size.
            Some(n) if w == 0 => -(n as f64),
            _ => w as f64,
        })
    })?;
    env.double(written)
}

fn write_counters(s: &mut Slot, result: &mut [f64]) {
    result[RESULT_MORE] = if s.draining { 1.0 } else { 0.0 };
    let send_errors = s.driver.send_errors();
    let cond = s.driver.conditioner().map(|c| c.stats().clone()).unwrap_or_default();
    let e = s.driver.endpoint();
    let c = Counters {
        e: e.stats(),
        send_errors,
        cond,
        peers: e.peer_count() as u64,
        buffered: e.buffered_bytes() as u64,
    };
    for (i, (_, get)) in COUNTERS.iter().enumerate() {
        result[RESULT_COUNTERS + i] = get(&c) as f64;
    }
    secure::write_counters(e.secure_stats().as_ref(), &mut result[RESULT_SECURE..RESULT_LEN]);
}

/// `netClose(h)`: closes the socket (peers are not told; disconnect them first). Safe to
/// call again, or from a finalizer after an explicit close: a closed handle is ignored.
pub fn close(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let h = env.get_uint(arg(args, 0, "h")?, "net handle", MAX_HANDLE)?;
    // A handle that is not open (closed already) is left alone: closing is idempotent.
    drop(SLOTS.with(|s| s.take(h)));
    env.undefined()
}

/// Reads one field of a peer's snapshot.
type PeerField = fn(u32, &PeerInfo) -> f64;

/// The fields `netPeerStats` writes per peer, in order: `netLayout().peerStats`.
#[rustfmt::skip]
const PEER_STATS: &[(&str, PeerField)] = &[
    ("peer", |id, _| id as f64),
    ("srttMs", |_, p| p.srtt_ms.unwrap_or(-1.0)),
    ("rtoMs", |_, p| p.rto_ms as f64),
    ("packetsSent", |_, p| p.packets_sent as f64),
    ("packetsLost", |_, p| p.packets_lost as f64),
    ("retransmissions", |_, p| p.retransmissions as f64),
    ("packetsInFlight", |_, p| p.packets_in_flight as f64),
    ("unackedBytes", |_, p| p.unacked_bytes as f64),
    ("queuedBytes", |_, p| p.queued_bytes as f64),
];

/// `netPeerStats(h, out) -> peers`: for each connected peer, while `out` (a Float64Array) has room,
/// the fields of [`PEER_STATS`] one after another. Returns how many peers there are: when that is
/// more than `out` holds, call again with a larger one. Bounded work: one pass over the peer table.
pub fn peer_stats(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let out = env.float64_array(arg(args, 1, "out")?, "out", 0)?;
    // SAFETY: `out` is a typed array alive for this call, the only buffer argument (so nothing else
    // here aliases it), and no JavaScript runs until the call returns.
    let out = unsafe { out.as_mut_slice() };
    let stride = PEER_STATS.len();
    let n = with_slot(env, arg(args, 0, "h")?, |s| {
        let e = s.driver.endpoint();
        let mut n = 0;
        for id in e.peers().collect::<Vec<_>>() {
            let Some(info) = e.peer_info(id).filter(|i| i.connected) else {
                continue;
            };
            if let Some(row) = out.get_mut(n * stride..(n + 1) * stride) {
                for (slot, (_, get)) in row.iter_mut().zip(PEER_STATS) {
                    *slot = get(id, &info);
                }
            }
            n += 1;
        }
        Ok(n)
    })?;
    env.double(n as f64)
}

/// An object of numbers by name.
fn numbers(env: &Env, pairs: &[(&str, usize)]) -> Result<napi_value> {
    let o = env.object()?;
    for &(name, v) in pairs {
        env.set(o, name, env.double(v as f64)?)?;
    }
    Ok(o)
}

fn strings<'a>(env: &Env, names: impl Iterator<Item = &'a str>) -> Result<napi_value> {
    let items = names.map(|n| env.string(n)).collect::<Result<Vec<_>>>()?;
    env.array(&items)
}

/// `netLayout() -> object`: every layout `netService` and its configuration share with
/// JavaScript (see the module documentation), read once when the transport first loads.
pub fn layout(env: &Env, _args: &[napi_value]) -> Result<napi_value> {
    let o = env.object()?;
    let evs = env.object()?;
    for l in &events::LAYOUT {
        let mut pairs = vec![("tag", l.tag as usize), ("fixed", l.fixed)];
        pairs.extend_from_slice(l.fields);
        env.set(evs, l.name, numbers(env, &pairs)?)?;
    }
    env.set(o, "events", evs)?;
    env.set(o, "reliableBit", env.double(events::RELIABLE_BIT as f64)?)?;
    env.set(o, "disconnectReasons", strings(env, DISCONNECT_REASONS.into_iter())?)?;
    env.set(o, "refusalReasons", strings(env, REFUSAL_REASONS.into_iter())?)?;
    env.set(o, "faultKinds", strings(env, FAULT_KINDS.into_iter())?)?;
    let send = numbers(
        env,
        &[
            ("header", ENTRY_HEADER),
            ("peer", ENTRY_PEER),
            ("channel", ENTRY_CHANNEL),
            ("reliability", ENTRY_RELIABILITY),
            ("flags", ENTRY_FLAGS),
            ("length", ENTRY_LENGTH),
            ("control", FLAG_CONTROL as usize),
        ],
    )?;
    env.set(o, "send", send)?;
    env.set(
        o,
        "reliabilities",
        strings(env, Reliability::ALL.iter().map(|r| r.name()))?,
    )?;
    env.set(o, "channels", env.double(CHANNELS as f64)?)?;
    let framing = numbers(
        env,
        &[("maxDatagram", SECURE_MAX_DATAGRAM), ("framing", SECURE_FRAMING)],
    )?;
    env.set(o, "secureLink", framing)?;
    let result = numbers(
        env,
        &[
            ("more", RESULT_MORE),
            ("kept", RESULT_KEPT),
            ("counters", RESULT_COUNTERS),
            ("secureCounters", RESULT_SECURE),
            ("length", RESULT_LEN),
        ],
    )?;
    env.set(o, "result", result)?;
    env.set(o, "counters", strings(env, COUNTERS.iter().map(|c| c.0))?)?;
    let secure_names = secure::counter_names();
    env.set(
        o,
        "secureCounters",
        strings(env, secure_names.iter().map(String::as_str))?,
    )?;
    env.set(o, "config", strings(env, CONFIG.iter().map(|c| c.0))?)?;
    env.set(o, "conditioner", strings(env, CONDITIONER.iter().map(|c| c.0))?)?;
    env.set(o, "peerStats", strings(env, PEER_STATS.iter().map(|c| c.0))?)?;
    Ok(o)
}
