//! Exports for the reliable-UDP transport ([`crate::net`]).
//!
//! One call per tick, [`service`], moves a whole batch each way: it takes the
//! messages JavaScript packed into a send buffer, runs the socket and the
//! protocol, and writes events (connections, messages, refusals) into an out
//! buffer. Nothing here is called per message.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::buf::check_disjoint;
use super::handles::{Handles, MAX_HANDLE};
use super::sys::napi_value;
use super::{arg, Env, JsError, Result};
use crate::net::{ConditionerConfig, Config, Driver, Reliability, SendError};

/// Tag of a refusal event in the out buffer (the endpoint encodes tags 1 to 3; see ts/net/udp.ts).
const EV_REJECTED: u8 = 4;
/// Bytes of a refusal event: tag, u32 offset of the entry, u8 why.
const REJECTED_LEN: usize = 6;

/// Bytes of a send entry's header: u32 peer, u8 channel, u8 reliability, u16 0, u32 length.
const SEND_HEADER: usize = 12;

struct Slot {
    driver: Driver,
    /// Refusals of the last send batch not yet handed to JavaScript, from `cursor` on.
    stage: Vec<u8>,
    cursor: usize,
    /// The last call left events for the next one (which then only hands them out).
    draining: bool,
}

thread_local! {
    static SLOTS: Handles<Slot> = const { Handles::new() };
    static EPOCH: Instant = Instant::now();
}

fn now_ms() -> u64 {
    EPOCH.with(|e| e.elapsed().as_millis() as u64)
}

fn with_slot<T>(env: &Env, h: napi_value, f: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
    let h = env.get_uint(h, "net handle", MAX_HANDLE)?;
    SLOTS.with(|s| s.with(h, "net", f))
}

fn parse_addr(host: &str, port: u64) -> Result<SocketAddr> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| JsError::arg(format!("'{host}' is not an IP address (resolve host names first)")))?;
    Ok(SocketAddr::new(ip, port as u16))
}

/// Reads a Float64Array of numbers; NaN means "keep the default".
fn numbers(env: &Env, v: napi_value, what: &str) -> Result<Vec<f64>> {
    let m = env.float64_array(v, what, 0)?;
    // SAFETY: the typed array's memory, alive for this call and not written during it.
    Ok(unsafe { m.as_slice() }.to_vec())
}

fn pick<T: Copy>(xs: &[f64], i: usize, default: T, conv: impl Fn(f64) -> T) -> T {
    match xs.get(i) {
        Some(x) if x.is_finite() => conv(*x),
        _ => default,
    }
}

/// `netOpen(host, port, config: Float64Array, seed) -> handle`: binds a UDP socket.
/// config = [mtu, maxMessageSize, maxPeers, timeoutMs, keepaliveMs, maxQueuedBytes,
/// maxInFlightBytes, acceptIncoming (0/1)], NaN for defaults.
pub fn open(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let host = env.get_string(arg(args, 0, "host")?, "host")?;
    let port = env.get_uint(arg(args, 1, "port")?, "port", 65535.0)?;
    let c = numbers(env, arg(args, 2, "config")?, "config")?;
    let seed = env.get_f64(arg(args, 3, "seed")?, "seed")?.to_bits();
    let d = Config::default();
    let config = Config {
        mtu: pick(&c, 0, d.mtu, |x| x as usize),
        max_message_size: pick(&c, 1, d.max_message_size, |x| x as usize),
        max_peers: pick(&c, 2, d.max_peers, |x| x as usize),
        timeout_ms: pick(&c, 3, d.timeout_ms, |x| x as u64),
        keepalive_ms: pick(&c, 4, d.keepalive_ms, |x| x as u64),
        max_queued_bytes: pick(&c, 5, d.max_queued_bytes, |x| x as usize),
        max_in_flight_bytes: pick(&c, 6, d.max_in_flight_bytes, |x| x as usize),
        accept_incoming: pick(&c, 7, d.accept_incoming, |x| x != 0.0),
        ..d
    };
    let addr = parse_addr(&host, port)?;
    let driver = Driver::bind(addr, config, seed).map_err(|e| JsError::io(&format!("bind {addr}"), e))?;
    let slot = Slot {
        driver,
        stage: Vec::new(),
        cursor: 0,
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

/// `netSetConditioner(h, cfg | null)`: cfg = [loss, duplicate, reorder, delayMs, jitterMs, seed].
pub fn set_conditioner(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let cfg = match args.get(1) {
        Some(&v) if !env.is_nullish(v)? => {
            let c = numbers(env, v, "conditioner")?;
            let d = ConditionerConfig::default();
            Some(ConditionerConfig {
                loss: pick(&c, 0, d.loss, |x| x.clamp(0.0, 1.0)),
                duplicate: pick(&c, 1, d.duplicate, |x| x.clamp(0.0, 1.0)),
                reorder: pick(&c, 2, d.reorder, |x| x.clamp(0.0, 1.0)),
                delay_ms: pick(&c, 3, d.delay_ms, |x| x as u64),
                jitter_ms: pick(&c, 4, d.jitter_ms, |x| x as u64),
                seed: pick(&c, 5, d.seed, |x| x as u64),
                ..d
            })
        }
        _ => None,
    };
    with_slot(env, arg(args, 0, "h")?, |s| {
        s.driver.set_conditioner(cfg);
        Ok(())
    })?;
    env.undefined()
}

fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// Number of counters `service` writes into `stats`.
const STAT_COUNT: usize = 30;

/// `netService(h, send: Uint8Array, sendLen, out: Uint8Array, maxDatagrams, stats: Float64Array) -> outLen`.
///
/// Queues the packed messages in `send[0..sendLen]` (entries of u32 peer, u8
/// channel, u8 reliability, u16 0, u32 length, then the bytes; little-endian),
/// reads up to `maxDatagrams` datagrams, runs timers and sends what is due,
/// then copies whole events into `out`. A refused entry comes back as a REJECTED
/// event with its offset and why (1 window full, 2 unknown peer, 3 too large, 4
/// other). After a code 1 or 2 every later entry to that peer in the batch is
/// refused too (and not reported again), so order is kept. Returns the bytes written to `out`, or minus the size of
/// the next event when `out` is empty and too small for it. `stats[0]` is 1
/// when more events wait (call again with `sendLen` 0), then the counters.
pub fn service(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let send = env.uint8_array(arg(args, 1, "send")?, "send")?;
    let send_len = env.get_uint(arg(args, 2, "sendLen")?, "sendLen", send.len() as f64)? as usize;
    let send = send.prefix(send_len);
    let out = env.uint8_array(arg(args, 3, "out")?, "out")?;
    let max_datagrams = env.get_uint(arg(args, 4, "maxDatagrams")?, "maxDatagrams", 1e9)? as usize;
    let stats = env
        .float64_array(arg(args, 5, "stats")?, "stats", STAT_COUNT)?
        .prefix(STAT_COUNT);
    check_disjoint(&[
        ("send", send.byte_range()),
        ("out", out.byte_range()),
        ("stats", stats.byte_range()),
    ])?;
    // SAFETY: the three are typed arrays alive for this call, pairwise disjoint (checked), and
    // nothing else reads or writes them during it: send is only read, out and stats only written.
    let (send, out, stats) = unsafe { (send.as_slice(), out.as_mut_slice(), stats.as_mut_slice()) };
    let written = with_slot(env, arg(args, 0, "h")?, |s| {
        let now = now_ms();
        // Only a call that finds nothing left over runs the socket; the others hand out what is left.
        let fresh = !s.draining;
        if fresh {
            s.stage.clear();
            s.cursor = 0;
        }
        if !send.is_empty() {
            queue_sends(s, now, send)?;
        }
        if fresh {
            s.driver
                .service(now, max_datagrams)
                .map_err(|e| JsError::io("UDP socket", e))?;
        }
        // Refusals of this batch first, then the endpoint's events, whole ones only.
        let staged = (s.stage.len() - s.cursor) / REJECTED_LEN * REJECTED_LEN;
        let take = staged.min(out.len() / REJECTED_LEN * REJECTED_LEN);
        out[..take].copy_from_slice(&s.stage[s.cursor..s.cursor + take]);
        s.cursor += take;
        let mut w = take;
        if s.cursor == s.stage.len() {
            w += s.driver.endpoint().drain_encoded(&mut out[w..]);
        }
        let next = if s.cursor < s.stage.len() {
            Some(REJECTED_LEN)
        } else {
            s.driver.endpoint().next_encoded_len()
        };
        s.draining = next.is_some();
        write_stats(s, stats);
        Ok(match next {
            // Nothing fits: the caller needs a buffer of at least this size.
            Some(n) if w == 0 => -(n as f64),
            _ => w as f64,
        })
    })?;
    env.double(written)
}

fn queue_sends(s: &mut Slot, now: u64, send: &[u8]) -> Result<()> {
    let mut blocked: Vec<u32> = Vec::new();
    let mut p = 0;
    while p < send.len() {
        if p + SEND_HEADER > send.len() {
            return Err(JsError::arg(format!("send buffer ends inside an entry header at {p}")));
        }
        let peer = u32::from_le_bytes(send[p..p + 4].try_into().expect("4 bytes"));
        let channel = send[p + 4];
        let rel = Reliability::from_u8(send[p + 5])
            .ok_or_else(|| JsError::arg(format!("bad reliability {} at {p}", send[p + 5])))?;
        let len = u32::from_le_bytes(send[p + 8..p + 12].try_into().expect("4 bytes")) as usize;
        let body = p + SEND_HEADER;
        if body + len > send.len() {
            return Err(JsError::arg(format!("send entry at {p} runs past the buffer")));
        }
        let refused = if blocked.contains(&peer) {
            Some(SendError::WindowFull)
        } else {
            s.driver
                .endpoint()
                .send(now, peer, channel, rel, &send[body..body + len])
                .err()
        };
        if let Some(e) = refused {
            if blocked.contains(&peer) {
                // Only the first refusal per peer is reported: every later entry to it is refused too.
                p = body + len;
                continue;
            }
            // A full window or a gone peer refuses every later entry to that peer as well (so
            // order is kept); a message refused for itself (too large, bad channel) is alone.
            if matches!(e, SendError::WindowFull | SendError::UnknownPeer) {
                blocked.push(peer);
            }
            s.stage.push(EV_REJECTED);
            put_u32(&mut s.stage, p as u32);
            s.stage.push(match e {
                SendError::WindowFull => 1,
                SendError::UnknownPeer => 2,
                SendError::TooLarge => 3,
                SendError::BadChannel | SendError::PeerLimit => 4,
            });
        }
        p = body + len;
    }
    Ok(())
}

fn write_stats(s: &mut Slot, st: &mut [f64]) {
    st[0] = if s.draining { 1.0 } else { 0.0 };
    let send_errors = s.driver.send_errors();
    let (lost, dup, reord) = s
        .driver
        .conditioner()
        .map(|c| {
            let cs = c.stats();
            (cs.lost, cs.duplicated, cs.reordered)
        })
        .unwrap_or((0, 0, 0));
    let e = s.driver.endpoint();
    let peers = e.peer_count() as u64;
    let x = e.stats();
    let vals = [
        x.datagrams_in,
        x.datagrams_out,
        x.bytes_in,
        x.bytes_out,
        x.messages_sent,
        x.messages_delivered,
        x.retransmissions,
        x.fast_retransmits,
        x.rto_expiries,
        x.acks_sent,
        x.pings_sent,
        x.connections,
        x.drop_garbled,
        x.drop_stranger,
        x.drop_wrong_connection_id,
        x.drop_bad_cookie,
        x.drop_expired_cookie,
        x.drop_duplicate,
        x.drop_stale,
        x.drop_absurd_fragment,
        x.drop_peer_cap,
        x.drop_reassembly_cap,
        x.drop_event_backlog,
        x.drop_unreliable_partial,
        send_errors,
        lost,
        dup,
        reord,
        peers,
    ];
    for (i, v) in vals.iter().enumerate() {
        st[i + 1] = *v as f64;
    }
}

/// `netClose(h)`: closes the socket (peers are not told; disconnect them first). Safe to
/// call again, or from a finalizer after an explicit close: a closed handle is ignored.
pub fn close(env: &Env, args: &[napi_value]) -> Result<napi_value> {
    let h = env.get_uint(arg(args, 0, "h")?, "net handle", MAX_HANDLE)?;
    // A handle that is not open (closed already) is left alone: closing is idempotent.
    drop(SLOTS.with(|s| s.take(h)));
    env.undefined()
}
