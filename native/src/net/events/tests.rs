//! Tests of the event queue: whole events in order, their layout, the reason tables.

use super::*;

#[test]
fn should_hand_out_whole_events_in_order_and_decode_them() {
    let mut ev = Events::default();
    let addr = "[::1]:4000".parse().expect("address");
    ev.push_connected(7, addr);
    ev.push_message(7, 3, true, &[9; 20]);
    ev.push_disconnected(7, DisconnectReason::Timeout);
    let sizes = [6 + "[::1]:4000".len(), 10 + 20, 6];
    assert_eq!(ev.backlog(), sizes.iter().sum::<usize>());
    assert_eq!(ev.next_len(), Some(sizes[0]));

    // A buffer one byte short of the first two events takes only the first.
    let mut out = vec![0u8; sizes[0] + sizes[1] - 1];
    assert_eq!(ev.drain_into(&mut out), sizes[0]);
    assert_eq!(out[0], 1);
    assert_eq!(&out[1..5], &7u32.to_le_bytes());
    assert_eq!(&out[6..sizes[0]], b"[::1]:4000");
    assert_eq!(ev.next_len(), Some(sizes[1]));
    // Too small for the next one: nothing moves.
    assert_eq!(ev.drain_into(&mut out[..sizes[1] - 1]), 0);

    assert_eq!(
        ev.pop(),
        Some(EventRef::Message {
            peer: 7,
            channel: 3,
            data: &[9; 20]
        })
    );
    assert_eq!(
        ev.pop(),
        Some(EventRef::Disconnected {
            peer: 7,
            reason: DisconnectReason::Timeout
        })
    );
    assert_eq!(ev.pop(), None);
    assert_eq!(ev.backlog(), 0);

    // Drained, the log starts over rather than growing.
    ev.push_connected(1, "127.0.0.1:9".parse().expect("address"));
    assert_eq!(ev.backlog(), 6 + "127.0.0.1:9".len());
    assert_eq!(
        ev.pop(),
        Some(EventRef::Connected {
            peer: 1,
            addr: "127.0.0.1:9".parse().expect("address")
        })
    );
    ev.push_message(2, 0, false, &[]);
    let mut all = vec![0u8; 64];
    assert_eq!(ev.drain_into(&mut all), 10);
    assert_eq!(ev.buf.len(), 0, "a full drain empties the buffer");
}

#[test]
fn should_mark_reliable_messages_in_the_channel_byte() {
    let mut ev = Events::default();
    ev.push_message(1, 5, true, &[1]);
    ev.push_message(1, 31, false, &[2]);
    let mut out = [0u8; 22];
    assert_eq!(ev.drain_into(&mut out), 22);
    assert_eq!((out[5], out[16]), (5 | RELIABLE_BIT, 31));
    ev.push_message(1, 5, true, &[1]);
    assert_eq!(
        ev.pop(),
        Some(EventRef::Message {
            peer: 1,
            channel: 5,
            data: &[1]
        })
    );
}

#[test]
fn should_refuse_more_once_the_backlog_reaches_the_cap() {
    let mut ev = Events::default();
    assert!(!ev.over(1000, 100), "an empty log takes anything");
    ev.push_message(0, 0, false, &[0; 50]);
    assert!(!ev.over(40, 100));
    assert!(ev.over(41, 100));
}

/// Reads field `name` of the layout of `tag` from an encoded event.
fn field(b: &[u8], tag: Tag, name: &str, width: usize) -> u64 {
    let l = LAYOUT.iter().find(|l| l.tag == tag).expect("a layout per tag");
    let at = l.fields.iter().find(|f| f.0 == name).expect("field").1;
    let mut v = [0u8; 8];
    v[..width].copy_from_slice(&b[at..at + width]);
    u64::from_le_bytes(v)
}

#[test]
fn should_encode_every_event_as_the_exported_layout_says() {
    let mut ev = Events::default();
    let addr: SocketAddr = "127.0.0.1:4000".parse().expect("address");
    ev.push_connected(9, addr);
    ev.push_disconnected(9, DisconnectReason::Refused);
    ev.push_message(9, 4, true, b"hello");
    ev.push_refused(9, Refusal::TooLarge, 70_000);
    ev.push_pending(9, 123_456);
    ev.push_fault(9, Fault::Channel, 31);
    let mut out = vec![0u8; 256];
    let n = ev.drain_into(&mut out);
    let mut p = 0;
    let mut tags = Vec::new();
    while p < n {
        let b = &out[p..n];
        let l = LAYOUT.iter().find(|l| l.tag as u8 == b[AT_TAG]).expect("a known tag");
        tags.push(l.tag);
        assert_eq!(field(b, l.tag, "peer", 4), 9, "{}", l.name);
        let size = match l.tag {
            Tag::Connected => {
                let len = field(b, l.tag, "addrLength", 1) as usize;
                assert_eq!(&b[l.fixed..l.fixed + len], b"127.0.0.1:4000");
                l.fixed + len
            }
            Tag::Disconnected => {
                assert_eq!(DISCONNECT_REASONS[field(b, l.tag, "reason", 1) as usize], "refused");
                l.fixed
            }
            Tag::Message => {
                assert_eq!(field(b, l.tag, "channel", 1), 4 | RELIABLE_BIT as u64);
                let len = field(b, l.tag, "length", 4) as usize;
                assert_eq!(&b[l.fixed..l.fixed + len], b"hello");
                l.fixed + len
            }
            Tag::Refused => {
                assert_eq!(REFUSAL_REASONS[field(b, l.tag, "reason", 1) as usize], "too-large");
                assert_eq!(field(b, l.tag, "count", 4), 70_000);
                l.fixed
            }
            Tag::Pending => {
                assert_eq!(field(b, l.tag, "bytes", 4), 123_456);
                l.fixed
            }
            Tag::Fault => {
                assert_eq!(FAULT_KINDS[field(b, l.tag, "kind", 1) as usize], "channel");
                assert_eq!(field(b, l.tag, "detail", 4), 31);
                l.fixed
            }
        };
        p += size;
    }
    assert_eq!(p, n, "the sizes the layout implies add up to what was written");
    assert_eq!(
        tags,
        [
            Tag::Connected,
            Tag::Disconnected,
            Tag::Message,
            Tag::Refused,
            Tag::Pending,
            Tag::Fault
        ]
    );
    // Each kind has its own tag; every field lies inside the fixed part or starts the variable one.
    for (i, l) in LAYOUT.iter().enumerate() {
        assert!(LAYOUT[i + 1..].iter().all(|o| o.tag != l.tag && o.name != l.name));
        assert!(l.fields.iter().all(|f| f.1 <= l.fixed), "{}", l.name);
    }
}

#[test]
fn should_skip_send_report_events_when_decoding() {
    let mut ev = Events::default();
    ev.push_refused(3, Refusal::Gone, 2);
    ev.push_pending(3, 0);
    ev.push_disconnected(3, DisconnectReason::Local);
    assert_eq!(
        ev.pop(),
        Some(EventRef::Disconnected {
            peer: 3,
            reason: DisconnectReason::Local
        })
    );
    assert_eq!(ev.pop(), None);
}

#[test]
fn should_round_trip_every_disconnect_reason_through_its_code() {
    let mut all = vec![
        DisconnectReason::Local,
        DisconnectReason::Remote,
        DisconnectReason::Timeout,
        DisconnectReason::Refused,
        DisconnectReason::Error,
        DisconnectReason::TokenRequired,
        DisconnectReason::NotSecure,
    ];
    all.extend(SECURE_FAILURES.iter().map(|s| DisconnectReason::Secure(*s)));
    assert_eq!(all.len(), DISCONNECT_REASONS.len());
    for (i, r) in all.into_iter().enumerate() {
        assert_eq!(reason_code(r) as usize, i, "{r:?}");
        assert_eq!(reason_of(reason_code(r)), r);
    }
    assert_eq!(DISCONNECT_REASONS[4], "error");
    assert_eq!(DISCONNECT_REASONS[12], "connection denied");
}
