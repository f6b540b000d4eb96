//! Two processes, ten million messages.

use super::*;

// ---------------------------------------------------------- two-process stress

extern "C" {
    fn dup(fd: i32) -> i32;
    fn close(fd: i32) -> i32;
}

const STRESS_ENV: &str = "TSAGE_RING_STRESS";
const STRESS_MESSAGES: u64 = 10_000_000;
const STRESS_CAPACITY: usize = 1 << 20;
const STRESS_KIND: u32 = 16;

/// The stress payload: the sequence number and a check word derived from it.
fn stress_payload(seq: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..8].copy_from_slice(&seq.to_ne_bytes());
    b[8..].copy_from_slice(&((seq as u32) ^ 0xA5A5_A5A5).to_ne_bytes());
    b
}

#[test]
fn should_pass_ten_million_sequenced_messages_in_order_between_two_processes() {
    if let Ok(spec) = std::env::var(STRESS_ENV) {
        stress_producer(&spec);
        return;
    }
    let len = region_len(STRESS_CAPACITY);
    let region = Region::create(len).unwrap();
    // SAFETY: the region is fresh and outlives the ring (the child maps its own).
    let ring = unsafe { Ring::init(region.as_ptr(), len, STRESS_CAPACITY, 4096) }.unwrap();
    let mut c = Consumer::new(ring.clone(), 1 << 20).unwrap();
    // SAFETY: dup of an open descriptor we own; the copy lacks close-on-exec.
    let fd = unsafe { dup(region.raw_fd().unwrap()) };
    assert!(fd >= 0);
    let name = format!(
        "{}::should_pass_ten_million_sequenced_messages_in_order_between_two_processes",
        module_path!().split_once("::").map(|(_, m)| m).unwrap_or("")
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(STRESS_ENV, format!("{fd}:{len}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // SAFETY: fd is our duplicate; the child has its own copy now.
    unsafe { close(fd) };

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut next = 0u64;
    let mut idle = 0u32;
    while next < STRESS_MESSAGES {
        match c.poll().unwrap() {
            Polled::Records { offset, len } => {
                idle = 0;
                for r in ring.records(offset, len) {
                    let r = r.unwrap();
                    assert_eq!((r.kind, r.len), (STRESS_KIND, 12), "record {next}");
                    let mut b = [0u8; 12];
                    ring.read(r.offset, &mut b).unwrap();
                    assert_eq!(b, stress_payload(next), "record {next}");
                    next += 1;
                }
                c.release(len).unwrap();
            }
            Polled::Empty => {
                idle += 1;
                if idle.is_multiple_of(64) {
                    std::thread::yield_now();
                }
                if idle.is_multiple_of(4096) {
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!("timed out after 60 s at message {next}");
                    }
                    if let Some(status) = child.try_wait().unwrap() {
                        // Drain what it published before exiting, then judge.
                        if c.ring().head() == c.tail() {
                            panic!("producer exited ({status}) after {next} messages");
                        }
                    }
                }
                std::hint::spin_loop();
            }
            Polled::Message { .. } => panic!("unexpected fragmented message"),
        }
    }
    let elapsed = start.elapsed();
    let status = child.wait().unwrap();
    assert!(status.success(), "producer process failed: {status}");
    assert_eq!(c.poll().unwrap(), Polled::Empty, "nothing after the last message");
    eprintln!(
        "two-process stress: {STRESS_MESSAGES} messages in {:.2?} = {:.1} M messages/s",
        elapsed,
        STRESS_MESSAGES as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// The child side: maps the inherited region and writes the sequence.
fn stress_producer(spec: &str) {
    let (fd, len) = spec.split_once(':').expect("fd:len");
    let (fd, len): (i32, usize) = (fd.parse().unwrap(), len.parse().unwrap());
    // SAFETY: the parent passed a live memfd of len bytes; the ring protocol
    // orders every access to the shared bytes.
    let region = unsafe { Region::map(fd, len) }.unwrap();
    // SAFETY: region outlives the ring (both live to the end of this function).
    let ring = unsafe { Ring::attach(region.as_ptr(), region.len()) }.unwrap();
    let mut p = Producer::new(ring).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seq = 0u64;
    let mut spins = 0u32;
    while seq < STRESS_MESSAGES {
        let mut batch = 0;
        while batch < 256 && seq < STRESS_MESSAGES && p.try_write(STRESS_KIND, &stress_payload(seq)).unwrap() {
            seq += 1;
            batch += 1;
        }
        p.publish();
        if batch == 0 {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
                assert!(Instant::now() < deadline, "producer timed out at {seq}");
            }
            std::hint::spin_loop();
        }
    }
}
