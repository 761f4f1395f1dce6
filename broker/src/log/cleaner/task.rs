//! The cleaner's background task and its checkpoint file.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use super::super::checkpoint::{self, CLEANER_OFFSET_CHECKPOINT};
use super::super::manager::periodic;
use super::super::{HighWatermarkFn, LogError, LogManager, TopicPartition, now_ms};
use super::CleanerSettings;

impl LogManager {
    /// Spawns the cleaner (if `settings.enabled`): every `log.cleaner.backoff.ms` it cleans
    /// every log that is due (highest dirty ratio first; overdue ones by
    /// `max.compaction.lag.ms` before all others), never above the high watermark from
    /// `high_watermark` (a partition the replica layer does not host is not cleaned), and
    /// rewrites `cleaner-offset-checkpoint` after a pass that advanced a log. A log whose
    /// cleaning fails (a corrupt batch) is skipped until the broker restarts, as Kafka marks
    /// it uncleanable. The pass runs on the blocking pool and checks `shutdown` between
    /// segments.
    pub fn spawn_cleaner(
        self: &Arc<Self>,
        settings: CleanerSettings,
        high_watermark: Arc<HighWatermarkFn>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !settings.enabled {
            return None;
        }
        let manager = Arc::clone(self);
        let stopping = shutdown.clone();
        let uncleanable: Mutex<HashSet<TopicPartition>> = Mutex::default();
        Some(periodic(settings.backoff_ms, shutdown, move || {
            let stop = || *stopping.borrow();
            let skip = uncleanable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let failed = manager.clean_due_logs(&*high_watermark, settings, &skip, &stop);
            uncleanable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(failed);
        }))
    }

    /// One cleaner pass over every log (see [`LogManager::spawn_cleaner`]), skipping `skip`.
    /// Returns the partitions whose cleaning failed.
    pub fn clean_due_logs(
        &self,
        high_watermark: &HighWatermarkFn,
        settings: CleanerSettings,
        skip: &HashSet<TopicPartition>,
        stop: &dyn Fn() -> bool,
    ) -> Vec<TopicPartition> {
        let now = now_ms();
        let mut due: Vec<_> = self
            .logs()
            .into_iter()
            .filter(|(tp, _)| !skip.contains(tp))
            .filter_map(|(tp, log)| {
                let hw = high_watermark(&tp)?;
                let (cleanable, should) = log.cleanable(now, hw)?;
                should.then_some((cleanable.overdue, cleanable.dirty_ratio(), tp, log, hw))
            })
            .collect();
        due.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        let mut failed = Vec::new();
        let mut advanced = false;
        for (_, _, tp, log, hw) in due {
            if stop() {
                break;
            }
            let before = log.first_dirty_offset();
            match log.clean(now_ms(), hw, settings.dedupe_buffer_bytes, stop) {
                Ok(outcome) => advanced |= outcome.first_dirty_offset != before,
                Err(error) => {
                    tracing::error!(%error, topic_partition = %tp, "log cleaning failed; the log is skipped until restart");
                    failed.push(tp);
                }
            }
        }
        if advanced && let Err(error) = self.write_cleaner_checkpoints() {
            tracing::error!(%error, "writing cleaner-offset-checkpoint");
        }
        failed
    }

    /// Writes `cleaner-offset-checkpoint` in every log directory: the first dirty offset of
    /// each log whose `cleanup.policy` includes `compact`.
    pub fn write_cleaner_checkpoints(&self) -> Result<(), LogError> {
        for (dir_index, dir) in self.dir_paths().iter().enumerate() {
            let entries: BTreeMap<TopicPartition, i64> = self
                .logs_with_dir()
                .into_iter()
                .filter(|(d, _, log)| *d == dir_index && log.config().cleanup_policy.compact)
                .map(|(_, tp, log)| (tp, log.first_dirty_offset()))
                .collect();
            checkpoint::write(&dir.join(CLEANER_OFFSET_CHECKPOINT), &entries)?;
        }
        Ok(())
    }
}
