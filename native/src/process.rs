//! Process plumbing for group children: dying with the parent.

use std::io;

const PR_SET_PDEATHSIG: i32 = 1;

extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn getppid() -> i32;
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
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and reads no memory.
    if unsafe { prctl(PR_SET_PDEATHSIG, signal as u64, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The parent's pid (1 or a subreaper's once the parent is gone).
pub fn parent_pid() -> i32 {
    // SAFETY: getppid has no preconditions.
    unsafe { getppid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_sigkill_and_refuse_bad_signal_numbers() {
        assert!(set_parent_death_signal(0).is_err());
        assert!(set_parent_death_signal(65).is_err());
        // Setting it on the test process is harmless: the test runner outlives this thread.
        set_parent_death_signal(9).unwrap();
    }

    #[test]
    fn should_report_a_live_parent() {
        assert!(parent_pid() > 0);
    }
}
