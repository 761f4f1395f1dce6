//! Log compaction (`cleanup.policy=compact`): the log cleaner keeps the latest record per key
//! in the sealed segments of a log, keeping every surviving record's offset.
//!
//! ```text
//! task.rs   one background task (LogManager::spawn_cleaner): every log.cleaner.backoff.ms,
//!   │       cleans every log that is due, dirtiest first; writes cleaner-offset-checkpoint
//!   └─ pass.rs   Log::clean: decide under the lock, copy without it, swap under it
//!        ├─ plan.rs    pure: cleanable range, dirty ratio, compaction lags, grouping
//!        ├─ retain.rs  pure: key map, which records survive, rewriting one batch
//!        ├─ copy.rs    I/O: read sealed segments, write <base>.log.cleaned (+ indexes)
//!        └─ swap.rs    I/O: the crash-safe rename protocol and its resolution at load
//! ```
//!
//! The clean/dirty boundary of each log (its *first dirty offset*) lives in the log's state,
//! like the recovery point, and is checkpointed per log directory in
//! `cleaner-offset-checkpoint` (format in `checkpoint.rs`; `docs/storage.md`, "Compaction").
//! Followers clean their own copies: cleaning never changes offsets, so replicas stay
//! comparable offset by offset even when they compacted different ranges.

mod copy;
mod pass;
pub mod plan;
pub mod retain;
pub(crate) mod swap;
mod task;

pub use pass::CleanOutcome;

/// The broker-wide cleaner settings (`log.cleaner.*`; the per-log ones are in `LogConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerSettings {
    /// `log.cleaner.enable` (default true).
    pub enabled: bool,
    /// `log.cleaner.backoff.ms`: pause between passes (default 15 s).
    pub backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: memory for the key map (default 128 MiB).
    pub dedupe_buffer_bytes: usize,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            backoff_ms: 15_000,
            dedupe_buffer_bytes: 128 * 1024 * 1024,
        }
    }
}
