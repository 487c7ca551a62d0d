//! The Linux scheduling policy of the calling thread: the one place the crate calls the
//! operating system directly. Threads created afterwards inherit it.
//!
//! - `Batch` (SCHED_BATCH) for the server's own threads. A request hops between threads (the
//!   async worker hands its SQL to a blocking thread and is woken with the rows); under the
//!   normal policy each wake-up preempts the thread that made it, so one request costs about
//!   three context switches. Batch threads do not preempt on wake-up: each runs until it waits,
//!   and hand-offs are taken in batches. Other programs' threads keep preempting ours.
//! - `Idle` (SCHED_IDLE) for password hashing: it only runs when nothing else wants the CPU.
//!
//! Elsewhere than Linux the calls do nothing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// SCHED_OTHER, the default (the tests put threads back to it).
    #[cfg(test)]
    Normal,
    Batch,
    Idle,
}

/// Sets the policy of the calling thread; its nice value is left as it is. Needs no privilege:
/// these three policies are open to every process.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn set_current_thread(policy: Policy) -> std::io::Result<()> {
    let policy = match policy {
        #[cfg(test)]
        Policy::Normal => libc::SCHED_OTHER,
        Policy::Batch => libc::SCHED_BATCH,
        Policy::Idle => libc::SCHED_IDLE,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid, initialized sched_param that the call only reads; pid 0 is
    // the calling thread (on Linux the policy is per thread).
    let rc = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn set_current_thread(_policy: Policy) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Field 41 of /proc/thread-self/stat: 0 other, 3 batch, 5 idle.
    fn current_policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(38).unwrap().parse().unwrap()
    }

    #[test]
    fn sets_the_calling_thread_only_and_threads_inherit_it() {
        std::thread::spawn(|| {
            assert_eq!(current_policy(), 0);
            set_current_thread(Policy::Batch).unwrap();
            assert_eq!(current_policy(), 3);
            let child = std::thread::spawn(current_policy).join().unwrap();
            assert_eq!(child, 3, "a thread started afterwards inherits the policy");
            set_current_thread(Policy::Idle).unwrap();
            assert_eq!(current_policy(), 5);
            set_current_thread(Policy::Normal).unwrap();
            assert_eq!(current_policy(), 0);
        })
        .join()
        .unwrap();
        assert_eq!(current_policy(), 0, "other threads keep their policy");
    }
}
