//! The socket driver over loopback.

use super::*;

// ---------------------------------------------------------------- driver over loopback

fn run_driver_pair(n: u32, cond: Option<ConditionerConfig>) -> f64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let any = addr("127.0.0.1:0");
    let mut tx = Driver::bind(any, Config::default(), 10).unwrap();
    let mut rx = Driver::bind(any, Config::default(), 20).unwrap();
    let rx_addr = rx.local_addr();
    if let Some(c) = cond.clone() {
        tx.set_conditioner(Some(c.clone()));
        rx.set_conditioner(Some(ConditionerConfig { seed: c.seed + 1, ..c }));
    }
    let t0 = Instant::now();
    let clock = move || t0.elapsed().as_millis() as u64;
    let deadline = Duration::from_secs(10);
    let done = Arc::new(AtomicBool::new(false));
    let done_rx = done.clone();

    let receiver = std::thread::spawn(move || {
        let mut next = 0u32;
        let mut first: Option<Instant> = None;
        while next < n {
            assert!(t0.elapsed() < deadline, "receiver timed out at {next}/{n}");
            rx.service(clock(), 512).unwrap();
            rx.endpoint().drain_events(|e| {
                if let EventRef::Message { data, .. } = e {
                    assert_eq!(seq_of(data), next);
                    next += 1;
                    first.get_or_insert_with(Instant::now);
                }
            });
        }
        done_rx.store(true, Ordering::Release);
        // Keep acknowledging briefly so the sender can finish cleanly.
        let end = Instant::now() + Duration::from_millis(100);
        while Instant::now() < end {
            rx.service(clock(), 512).unwrap();
        }
    });

    let p = tx.endpoint().connect(clock(), rx_addr).unwrap();
    let payload_base = [0u8; 64];
    let mut sent = 0u32;
    let mut started = None;
    while !done.load(Ordering::Acquire) {
        assert!(t0.elapsed() < deadline, "sender timed out at {sent}/{n}");
        let now = clock();
        let ep = tx.endpoint();
        if ep.peer_info(p).is_some_and(|i| i.connected) {
            started.get_or_insert_with(Instant::now);
            while sent < n && ep.can_send(p) {
                let mut m = payload_base;
                m[..4].copy_from_slice(&sent.to_le_bytes());
                ep.send(now, p, 0, Reliability::ReliableOrdered, &m).unwrap();
                sent += 1;
            }
        }
        tx.service(now, 512).unwrap();
    }
    let elapsed = started.unwrap().elapsed();
    receiver.join().unwrap();
    let st = tx.endpoint().stats().clone();
    let rate = n as f64 / elapsed.as_secs_f64();
    eprintln!(
        "driver: {n} x 64 B reliable-ordered in {:.3} s = {:.0} msgs/s (loss {:?}); datagrams out {} retrans {} fast {} rto {} send errors {}",
        elapsed.as_secs_f64(),
        rate,
        cond.map(|c| c.loss),
        st.datagrams_out,
        st.retransmissions,
        st.fast_retransmits,
        st.rto_expiries,
        tx.send_errors()
    );
    rate
}

#[test]
fn should_exchange_100k_messages_between_drivers_over_loopback() {
    let clean = run_driver_pair(100_000, None);
    let lossy = run_driver_pair(
        100_000,
        Some(ConditionerConfig {
            loss: 0.05,
            seed: 9,
            ..ConditionerConfig::default()
        }),
    );
    eprintln!("driver: lossless {clean:.0} msgs/s, 5% loss {lossy:.0} msgs/s");
}
