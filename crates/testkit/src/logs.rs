//! Log capture for canary checks: every `tracing` event of the test process (trace level,
//! noisy HTTP crates at info) goes into one buffer that tests search for planted values.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// The captured log text of this process.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::fmt::Debug for LogBuffer {
    // The length only: the text may hold planted values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("bytes", &self.lock().len())
            .finish()
    }
}

impl LogBuffer {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything logged so far.
    pub fn text(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Whether `needle` was logged.
    pub fn contains(&self, needle: &str) -> bool {
        let text = self.lock();
        !needle.is_empty() && text.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's log buffer; the first call installs the subscriber that fills it.
pub fn captured() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        // Another subscriber may already be installed (then nothing is captured here and the
        // canary checks would pass vacuously: every harness calls this first).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=info,h2=info,rustls=info,tower=info,hyper_util=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    })
}

/// A value to plant where a secret goes, unique in this test process (time and a counter), that
/// the tests then look for in logs, events and status.
pub fn canary(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("hush-canary-{tag}-{t:x}-{n}")
}
