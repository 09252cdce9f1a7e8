//! Process helpers for benchmark drivers: free loopback ports, CPU time and peak memory.

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Peak resident memory of process `pid` (`VmHWM` from /proc), in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time process `pid` has used so far (user + system, from `/proc/<pid>/stat`), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields after it do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; USER_HZ is
    // 100 on Linux.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_busy_process_shows_cpu_time() {
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // Busy until at least one tick shows (a loaded machine may take a while to give one).
        while super::cpu_seconds(std::process::id()).expect("reads /proc") == 0.0 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "no CPU time seen"
            );
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
}
