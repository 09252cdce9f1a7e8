//! `process_*` metrics as Go's client_golang exports them for every Bitnami and ESO controller
//! (dashboards and alerts read `process_resident_memory_bytes`, `process_cpu_seconds_total`, …),
//! read from Linux's `/proc` at each scrape. Elsewhere, or when `/proc` cannot be read, the
//! families are left out rather than reported as zero.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The kernel's `USER_HZ`: `/proc` reports CPU times and start times in these ticks, 100 on
/// every Linux architecture whatever the kernel's internal HZ.
const TICKS_PER_SECOND: f64 = 100.0;

/// The process's own figures, as client_golang's process collector names them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// User + system CPU time in seconds.
    pub cpu_seconds: f64,
    /// Resident set size in bytes.
    pub resident_memory_bytes: f64,
    /// Virtual memory size in bytes.
    pub virtual_memory_bytes: f64,
    /// Start time since the Unix epoch in seconds.
    pub start_time_seconds: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// The soft limit on open file descriptors.
    pub max_fds: f64,
}

impl ProcessStats {
    /// Reads this process's figures from `/proc`.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        Self::parse(&stat, &status, &system, &limits, open_fds)
    }

    /// The figures from the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and
    /// `/proc/self/limits`, and the number of entries in `/proc/self/fd`.
    pub fn parse(
        stat: &str,
        status: &str,
        system: &str,
        limits: &str,
        open_fds: usize,
    ) -> Option<Self> {
        // The command name is in parentheses and may itself hold spaces and parentheses.
        let after_comm = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        // `fields[0]` is field 3 of proc(5) (state).
        let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
        let ticks = field(14)? + field(15)?;
        let start_ticks = field(22)?;
        let vsize = field(23)?;
        let boot_time: f64 = system
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        let rss_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))?
            .split_whitespace()
            .next()
            .map(|soft| soft.parse().unwrap_or(f64::INFINITY))?;
        Some(Self {
            cpu_seconds: ticks / TICKS_PER_SECOND,
            resident_memory_bytes: rss_kib * 1024.0,
            virtual_memory_bytes: vsize,
            start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
            open_fds: open_fds as f64,
            max_fds,
        })
    }
}

/// The collector registered on every process's registry.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(stats) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stats.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stats.virtual_memory_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                stats.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                stats.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                stats.max_fds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (hush (ctl) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 \
        20 0 9 0 123456 104857600 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    const STATUS: &str = "Name:\thush\nVmPeak:\t  120000 kB\nVmRSS:\t   44200 kB\nThreads:\t9\n";
    const SYSTEM: &str = "cpu  1 2 3\nbtime 1795668632\nprocesses 9\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max open files            1048576              1048576              files     \n";

    #[test]
    fn figures_come_from_proc_as_client_golang_reads_them() {
        let s = ProcessStats::parse(STAT, STATUS, SYSTEM, LIMITS, 12).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_memory_bytes, 44200.0 * 1024.0);
        assert_eq!(s.virtual_memory_bytes, 104_857_600.0);
        assert_eq!(s.start_time_seconds, 1_795_668_632.0 + 1234.56);
        assert_eq!(s.open_fds, 12.0);
        assert_eq!(s.max_fds, 1_048_576.0);
        let unlimited = LIMITS.replace(
            "1048576              1048576",
            "unlimited            unlimited",
        );
        let s = ProcessStats::parse(STAT, STATUS, SYSTEM, &unlimited, 12).unwrap();
        assert!(s.max_fds.is_infinite());
    }

    #[test]
    fn unreadable_proc_texts_give_nothing() {
        assert_eq!(
            ProcessStats::parse("4242 (hush", STATUS, SYSTEM, LIMITS, 1),
            None
        );
        assert_eq!(
            ProcessStats::parse(STAT, "Name:\thush\n", SYSTEM, LIMITS, 1),
            None
        );
        assert_eq!(
            ProcessStats::parse(STAT, STATUS, "cpu 1\n", LIMITS, 1),
            None
        );
        assert_eq!(
            ProcessStats::parse("1 (x) S 1 2", STATUS, SYSTEM, LIMITS, 1),
            None
        );
    }

    #[test]
    fn this_process_is_encoded_with_client_golangs_names() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for family in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
            "# TYPE process_cpu_seconds_total counter",
        ] {
            assert!(text.contains(family), "{family} not in\n{text}");
        }
    }
}
