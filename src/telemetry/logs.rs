//! Where log lines go: a bounded buffer a thread writes out, each line cut
//! at [`MAX_LOG_LINE`] bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::counter;

/// The longest log line written, in bytes; longer ones are cut, so one
/// request can never write much log whatever it carries.
pub const MAX_LOG_LINE: usize = 4096;

/// A writer whose lines are cut at [`MAX_LOG_LINE`] bytes (the formatter
/// writes one event per `write`).
#[derive(Debug, Clone)]
pub struct CappedLines<W>(pub W);

impl<'a, W: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for CappedLines<W>
{
    type Writer = CappedLines<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        CappedLines(self.0.make_writer())
    }
}

impl<W: std::io::Write> std::io::Write for CappedLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() <= MAX_LOG_LINE {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut cut = MAX_LOG_LINE - 64;
        // Back to a character boundary: UTF-8 continuation bytes are 10xxxxxx.
        while cut > 0 && buf[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        let mut line = Vec::with_capacity(MAX_LOG_LINE);
        line.extend_from_slice(&buf[..cut]);
        let _ = writeln!(line, "…[{} bytes cut]", buf.len() - cut);
        self.0.write_all(&line)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The log writer of `recado serve`: lines are appended to a buffer and a
/// background thread writes the buffer out every [`LogBuffer::INTERVAL`] (or
/// sooner once it holds [`LogBuffer::FLUSH_AT`] bytes). A request pays for a
/// `memcpy` under an uncontended lock: no channel message, no thread
/// wake-up and no `write(2)` per line, which at thousands of requests a
/// second cost more than formatting the line. A stalled stderr never
/// blocks a request: past [`LogBuffer::LIMIT`] bytes lines are dropped and
/// counted (`recado_log_lines_dropped_total`).
pub struct LogBuffer {
    buf: std::sync::Mutex<Vec<u8>>,
    wake: std::sync::Condvar,
    dropped: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
}

/// Writes what is left when dropped (at exit).
pub struct LogFlushGuard(Arc<LogBuffer>, Option<std::thread::JoinHandle<()>>);

impl LogBuffer {
    pub const INTERVAL: Duration = Duration::from_millis(100);
    /// Small enough that the two buffers stay in the core's cache: at
    /// 256 KiB each line was written to memory no request had touched for
    /// a while, evicting what the next requests needed (callgrind, access
    /// line on: 45/40 L2 read/write misses a request at 256 KiB, 39/37
    /// here). A write every 32 KiB is still a hundred lines.
    pub const FLUSH_AT: usize = 32 * 1024;
    pub const LIMIT: usize = 16 * 1024 * 1024;

    /// Starts the writer thread over `out`.
    pub fn start(mut out: impl std::io::Write + Send + 'static) -> (Arc<LogBuffer>, LogFlushGuard) {
        use std::sync::atomic::Ordering::Relaxed;
        let shared = Arc::new(LogBuffer {
            buf: std::sync::Mutex::new(Vec::with_capacity(2 * Self::FLUSH_AT)),
            wake: std::sync::Condvar::new(),
            dropped: std::sync::atomic::AtomicU64::new(0),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        let me = shared.clone();
        let thread = std::thread::Builder::new()
            .name("recado-log".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(2 * Self::FLUSH_AT);
                loop {
                    let stop = {
                        let buf = me.buf.lock().unwrap_or_else(|e| e.into_inner());
                        let (mut buf, _) = me
                            .wake
                            .wait_timeout(buf, Self::INTERVAL)
                            .unwrap_or_else(|e| e.into_inner());
                        std::mem::swap(&mut *buf, &mut spare);
                        me.stop.load(Relaxed)
                    };
                    if !spare.is_empty() {
                        let _ = out.write_all(&spare);
                        let _ = out.flush();
                        spare.clear();
                    }
                    let dropped = me.dropped.swap(0, Relaxed);
                    if dropped > 0 {
                        counter!("recado_log_lines_dropped_total").increment(dropped);
                    }
                    if stop {
                        return;
                    }
                }
            })
            .expect("spawning the log writer thread");
        (shared.clone(), LogFlushGuard(shared, Some(thread)))
    }
}

/// What the subscriber writes one line through.
pub struct LogLine<'a>(&'a LogBuffer);

impl std::io::Write for LogLine<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = self.0;
        let mut buf = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        if buf.len() + line.len() > LogBuffer::LIMIT {
            shared
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(line.len());
        }
        let before = buf.len();
        buf.extend_from_slice(line);
        // Once, when the threshold is crossed: a notify is a system call
        // whether or not the thread waits, and it may not run before the
        // next lines (it shares the core). Missed, it wakes on its timer.
        if before < LogBuffer::FLUSH_AT && buf.len() >= LogBuffer::FLUSH_AT {
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The subscriber's handle on the buffer.
#[derive(Clone)]
pub struct LogWriter(pub Arc<LogBuffer>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine<'a>;
    fn make_writer(&'a self) -> LogLine<'a> {
        LogLine(&self.0)
    }
}

impl Drop for LogFlushGuard {
    fn drop(&mut self) {
        self.0
            .stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        {
            let _buf = self.0.buf.lock().unwrap_or_else(|e| e.into_inner());
            self.0.wake.notify_one();
        }
        // Wait for the last write, but never hang the exit on a stalled
        // stderr.
        if let Some(thread) = self.1.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
