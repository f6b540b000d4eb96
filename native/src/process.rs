//! Process plumbing for group children: dying with the parent.
//!
//! `PR_SET_PDEATHSIG` is Linux's; on other targets (and with `--cfg tsage_portable`)
//! [`set_parent_death_signal`] fails with [`io::ErrorKind::Unsupported`].

use std::io;

#[cfg(all(target_os = "linux", not(tsage_portable)))]
const PR_SET_PDEATHSIG: i32 = 1;

#[cfg(all(target_os = "linux", not(tsage_portable)))]
extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
}

/// Asks the kernel to send `signal` to this process when its parent thread
/// exits (Linux `PR_SET_PDEATHSIG`), so a group never outlives the main
/// process, even when that is killed with SIGKILL.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    if !(1..=64).contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad signal number {signal}"),
        ));
    }
    set_pdeathsig(signal)
}

#[cfg(all(target_os = "linux", not(tsage_portable)))]
fn set_pdeathsig(signal: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and reads no memory.
    if unsafe { prctl(PR_SET_PDEATHSIG, signal as u64, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(all(target_os = "linux", not(tsage_portable))))]
fn set_pdeathsig(_signal: i32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "dying with the parent (PR_SET_PDEATHSIG) needs Linux",
    ))
}

/// The parent's pid (1 or a subreaper's once the parent is gone).
#[cfg(unix)]
pub fn parent_pid() -> i32 {
    std::os::unix::process::parent_id() as i32
}

/// No parent pid is known here (std has none off Unix): -1.
#[cfg(not(unix))]
pub fn parent_pid() -> i32 {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_sigkill_and_refuse_bad_signal_numbers() {
        assert!(set_parent_death_signal(0).is_err());
        assert!(set_parent_death_signal(65).is_err());
        // Setting it on the test process is harmless: the test runner outlives this thread.
        #[cfg(not(tsage_portable))]
        set_parent_death_signal(9).unwrap();
        #[cfg(tsage_portable)]
        assert_eq!(
            set_parent_death_signal(9).unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
    }

    #[test]
    fn should_report_a_live_parent() {
        assert!(parent_pid() > 0);
    }
}
