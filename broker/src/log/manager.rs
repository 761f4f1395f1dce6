//! `LogManager`: every partition's log across the broker's `log.dirs`.
//!
//! # Per log directory
//!
//! ```text
//! <log.dir>/.lock                              fs2 exclusive lock, held while the manager lives
//! <log.dir>/.kafka_cleanshutdown               empty; written by a clean shutdown, removed at startup
//! <log.dir>/recovery-point-offset-checkpoint   see checkpoint.rs
//! <log.dir>/log-start-offset-checkpoint        see checkpoint.rs
//! <log.dir>/replication-offset-checkpoint      see checkpoint.rs (high watermarks)
//! <log.dir>/cleaner-offset-checkpoint          see checkpoint.rs (compacted logs' first dirty offsets)
//! <log.dir>/<topic>-<partition>/               one Log (with its leader-epoch-checkpoint)
//! <log.dir>/<topic>-<partition>.<32 hex>-delete/   a deleted partition being removed
//! ```
//!
//! At startup, a directory without the marker had an unclean shutdown: its logs are recovered
//! from their checkpointed recovery points. The marker is removed once every log in the
//! directory is loaded, so a crash from then on is again detected as unclean.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use fs2::FileExt;

use super::checkpoint::{
    self, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT, sync_dir,
};
use super::{Log, LogConfig, LogError, TopicPartition, now_ms};

/// Name of the clean-shutdown marker file in each log directory.
pub const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
/// Name of the lock file in each log directory.
pub const LOCK_FILE: &str = ".lock";

/// How often the flush scheduler looks for logs whose `flush.ms` elapsed or that rolled.
const FLUSH_CHECK_INTERVAL_MS: u64 = 1000;

#[derive(Debug)]
struct LogDir {
    path: PathBuf,
    /// Holds the exclusive lock on `.lock` until dropped.
    _lock: File,
}

/// All logs of the broker. `Send + Sync`; share it as `Arc<LogManager>`.
#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<LogDir>,
    default_config: LogConfig,
    /// Partition → (index into `dirs`, log). Only taken briefly to look up, create or delete a
    /// log, never on the append or read path of a `Log` already held.
    logs: RwLock<HashMap<TopicPartition, (usize, Arc<Log>)>>,
    /// High watermarks read from `replication-offset-checkpoint` at open, for partitions the
    /// replica layer has not taken over yet (and rewritten as they are until it does).
    stored_high_watermarks: Mutex<HashMap<TopicPartition, i64>>,
}

/// The high watermark of a partition as the replica layer knows it; `None` when it does not
/// host the partition (its checkpointed value, if any, is then kept).
pub type HighWatermarkFn = dyn Fn(&TopicPartition) -> Option<i64> + Send + Sync;

fn lock_dir(path: &Path) -> Result<LogDir, LogError> {
    std::fs::create_dir_all(path).map_err(|e| LogError::io("creating log directory", path, e))?;
    let lock_path = path.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| LogError::io("opening lock file", &lock_path, e))?;
    lock.try_lock_exclusive()
        .map_err(|_| LogError::LogDirLocked {
            path: path.to_path_buf(),
        })?;
    Ok(LogDir {
        path: path.to_path_buf(),
        _lock: lock,
    })
}

impl LogManager {
    /// Locks each dir, detects an unclean shutdown (no marker), loads every
    /// `<topic>-<partition>` directory (recovering from the recovery point when unclean),
    /// removes the marker and deletes leftover `-delete` directories and `.deleted` files.
    pub fn open(log_dirs: &[PathBuf], default_config: LogConfig) -> Result<LogManager, LogError> {
        let dirs = log_dirs
            .iter()
            .map(|p| lock_dir(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut logs: HashMap<TopicPartition, (usize, Arc<Log>)> = HashMap::new();
        let mut stored_high_watermarks = HashMap::new();
        let now = now_ms();
        for (dir_index, dir) in dirs.iter().enumerate() {
            let marker = dir.path.join(CLEAN_SHUTDOWN_MARKER);
            let clean = marker.exists();
            let recovery_points = checkpoint::read(&dir.path.join(RECOVERY_POINT_CHECKPOINT))?;
            let log_starts = checkpoint::read(&dir.path.join(LOG_START_OFFSET_CHECKPOINT))?;
            let high_watermarks = checkpoint::read(&dir.path.join(REPLICATION_OFFSET_CHECKPOINT))?;
            let first_dirty_offsets = checkpoint::read(&dir.path.join(CLEANER_OFFSET_CHECKPOINT))?;
            tracing::info!(dir = %dir.path.display(), clean, "loading logs");
            let entries = std::fs::read_dir(&dir.path)
                .map_err(|e| LogError::io("listing log directory", &dir.path, e))?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| LogError::io("listing log directory", &dir.path, e))?;
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with("-delete") {
                    match std::fs::remove_dir_all(&path) {
                        Ok(()) => {}
                        // A deletion thread of an earlier manager in this process got there
                        // first (seen in tests once partition dirs held one more file).
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(LogError::io("removing deleted log", &path, e)),
                    }
                    continue;
                }
                let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                    tracing::warn!(path = %path.display(), "ignoring a directory that is not <topic>-<partition>");
                    continue;
                };
                if let Some((_, existing)) = logs.get(&tp) {
                    return Err(LogError::DuplicateLog {
                        topic_partition: tp,
                        first: existing.dir().to_path_buf(),
                        second: path,
                    });
                }
                let recovery_point = recovery_points.get(&tp).copied().unwrap_or(0);
                let log_start = log_starts.get(&tp).copied().unwrap_or(0);
                let log = Log::open(
                    &path,
                    default_config.clone(),
                    recovery_point,
                    log_start,
                    clean,
                    now,
                )?;
                if let Some(&first_dirty) = first_dirty_offsets.get(&tp) {
                    log.restore_first_dirty_offset(first_dirty);
                }
                if let Some(&high_watermark) = high_watermarks.get(&tp) {
                    stored_high_watermarks.insert(tp.clone(), high_watermark);
                }
                logs.insert(tp, (dir_index, Arc::new(log)));
            }
            if clean {
                std::fs::remove_file(&marker)
                    .map_err(|e| LogError::io("removing clean-shutdown marker", &marker, e))?;
                sync_dir(&dir.path)?;
            }
        }
        Ok(LogManager {
            dirs,
            default_config,
            logs: RwLock::new(logs),
            stored_high_watermarks: Mutex::new(stored_high_watermarks),
        })
    }

    fn stored_high_watermarks(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, i64>> {
        self.stored_high_watermarks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The high watermark `replication-offset-checkpoint` held for `tp` when the manager
    /// opened, clamped to the log's `[log start, log end]` (the checkpoint may be older than
    /// a truncation, or newer than what survived a crash). `None` when the checkpoint had no
    /// entry or the partition has no log.
    pub fn stored_high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        let stored = *self.stored_high_watermarks().get(tp)?;
        let log = self.get(tp)?;
        Some(stored.clamp(log.log_start_offset(), log.log_end_offset()))
    }

    fn read_logs(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, (usize, Arc<Log>)>> {
        self.logs.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_logs(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<TopicPartition, (usize, Arc<Log>)>> {
        self.logs.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The default configuration logs are loaded with.
    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    /// The log of `tp`, if this broker has one.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.read_logs().get(tp).map(|(_, log)| Arc::clone(log))
    }

    /// The existing log, or a new one in the log dir holding the fewest partitions (ties: the
    /// first in list order).
    pub fn get_or_create(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<Log>, LogError> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let mut logs = self.write_logs();
        if let Some((_, log)) = logs.get(tp) {
            return Ok(Arc::clone(log));
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for (dir_index, _) in logs.values() {
            counts[*dir_index] += 1;
        }
        let dir_index = choose_dir(&counts);
        let parent = &self.dirs[dir_index].path;
        let log = Arc::new(Log::open(
            &parent.join(tp.dir_name()),
            config,
            0,
            0,
            true,
            now_ms(),
        )?);
        sync_dir(parent)?;
        logs.insert(tp.clone(), (dir_index, Arc::clone(&log)));
        tracing::info!(topic_partition = %tp, dir = %parent.display(), "created log");
        Ok(log)
    }

    /// Removes the partition from service and deletes its data: the directory is renamed to
    /// `<topic>-<partition>.<32 hex>-delete` and removed in the background. A no-op for an
    /// unknown partition.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let Some((_, log)) = self.write_logs().remove(tp) else {
            return Ok(());
        };
        self.stored_high_watermarks().remove(tp);
        log.mark_closed();
        let target = log.dir().with_file_name(format!(
            "{}.{:032x}-delete",
            tp.dir_name(),
            rand::random::<u128>()
        ));
        std::fs::rename(log.dir(), &target)
            .map_err(|e| LogError::io("renaming deleted log", log.dir(), e))?;
        if let Some(parent) = target.parent() {
            sync_dir(parent)?;
        }
        std::thread::spawn(move || {
            if let Err(error) = std::fs::remove_dir_all(&target) {
                tracing::warn!(%error, path = %target.display(), "could not remove deleted log (removed at next start)");
            }
        });
        tracing::info!(topic_partition = %tp, "deleted log");
        Ok(())
    }

    /// The log directories, in `log.dirs` order.
    pub(crate) fn dir_paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Every log with the index of its directory in [`LogManager::dir_paths`].
    pub(crate) fn logs_with_dir(&self) -> Vec<(usize, TopicPartition, Arc<Log>)> {
        self.read_logs()
            .iter()
            .map(|(tp, (d, log))| (*d, tp.clone(), Arc::clone(log)))
            .collect()
    }

    /// Every log with its partition, in partition order.
    pub fn logs(&self) -> Vec<(TopicPartition, Arc<Log>)> {
        let mut logs: Vec<_> = self
            .read_logs()
            .iter()
            .map(|(tp, (_, log))| (tp.clone(), Arc::clone(log)))
            .collect();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        logs
    }

    /// The log directory holding `tp`.
    pub fn log_dir_of(&self, tp: &TopicPartition) -> Option<PathBuf> {
        self.read_logs()
            .get(tp)
            .map(|(dir_index, _)| self.dirs[*dir_index].path.clone())
    }

    /// One retention pass over every log (time, size and log start; whole sealed segments
    /// only, rolling first if everything expired; never beyond the HW from `high_watermark`).
    /// Also unlinks deleted segment files whose delay has passed. Returns the number of
    /// segments deleted; a log that fails is logged and skipped.
    pub fn run_retention(
        &self,
        now_ms: i64,
        high_watermark: &dyn Fn(&TopicPartition) -> i64,
    ) -> usize {
        let mut deleted = 0;
        for (tp, log) in self.logs() {
            match log.apply_retention(now_ms, high_watermark(&tp)) {
                Ok(count) => deleted += count,
                Err(error) => tracing::error!(%error, topic_partition = %tp, "retention failed"),
            }
            log.delete_expired_files(now_ms);
        }
        deleted
    }

    /// Flushes logs whose `flush.ms` elapsed, fsyncs segments rolled since the last pass
    /// (advancing recovery points), and unlinks deleted files whose delay has passed. Tries
    /// every log; returns the first error.
    pub fn flush_due(&self, now_ms: i64) -> Result<(), LogError> {
        let mut first_error = None;
        for (_, log) in self.logs() {
            let result = if log.flush_due(now_ms) {
                log.flush()
            } else {
                log.flush_sealed()
            };
            if let Err(error) = result {
                tracing::error!(%error, topic_partition = %log.topic_partition(), "flush failed");
                first_error.get_or_insert(error);
            }
            log.delete_expired_files(now_ms);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes the recovery-point, log-start, replication (high watermark) and cleaner
    /// checkpoints of every log directory. A partition's HW is `high_watermark(tp)`, or the value read at
    /// open while that is `None`; a partition with neither has no entry.
    pub fn checkpoint(&self, high_watermark: &HighWatermarkFn) -> Result<(), LogError> {
        let logs = self.logs_with_dir();
        for (dir_index, dir) in self.dirs.iter().enumerate() {
            let in_dir = logs.iter().filter(|(d, _, _)| *d == dir_index);
            let recovery_points: BTreeMap<_, _> = in_dir
                .clone()
                .map(|(_, tp, log)| (tp.clone(), log.recovery_point()))
                .collect();
            let log_starts: BTreeMap<_, _> = in_dir
                .clone()
                .map(|(_, tp, log)| (tp.clone(), log.log_start_offset()))
                .collect();
            let high_watermarks: BTreeMap<_, _> = {
                let stored = self.stored_high_watermarks();
                in_dir
                    .filter_map(|(_, tp, _)| {
                        let hw = high_watermark(tp).or_else(|| stored.get(tp).copied())?;
                        Some((tp.clone(), hw))
                    })
                    .collect()
            };
            checkpoint::write(&dir.path.join(RECOVERY_POINT_CHECKPOINT), &recovery_points)?;
            checkpoint::write(&dir.path.join(LOG_START_OFFSET_CHECKPOINT), &log_starts)?;
            checkpoint::write(
                &dir.path.join(REPLICATION_OFFSET_CHECKPOINT),
                &high_watermarks,
            )?;
        }
        self.write_cleaner_checkpoints()
    }

    /// Spawns the background tasks: retention every `retention_check_interval_ms`
    /// (`log.retention.check.interval.ms`), the flush scheduler every second, and
    /// checkpoints every `checkpoint_interval_ms` (`log.flush.offset.checkpoint.interval.ms`;
    /// the high watermarks too, where Kafka has a separate 5 s
    /// `replica.high.watermark.checkpoint.interval.ms`). Retention treats a partition the
    /// replica layer does not host (`high_watermark` is `None`) as having HW 0: nothing of
    /// it is deleted.
    /// Each waits one interval before its first run and stops when `shutdown` becomes true
    /// (or its sender is dropped). File work runs on the blocking pool.
    pub fn spawn_background(
        self: &Arc<Self>,
        retention_check_interval_ms: u64,
        checkpoint_interval_ms: u64,
        high_watermark: Arc<HighWatermarkFn>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let retention = {
            let manager = Arc::clone(self);
            let high_watermark = Arc::clone(&high_watermark);
            periodic(retention_check_interval_ms, shutdown.clone(), move || {
                let deleted =
                    manager.run_retention(now_ms(), &|tp| high_watermark(tp).unwrap_or(0));
                if deleted > 0 {
                    tracing::info!(deleted, "retention pass");
                }
            })
        };
        let flush = {
            let manager = Arc::clone(self);
            periodic(FLUSH_CHECK_INTERVAL_MS, shutdown.clone(), move || {
                if let Err(error) = manager.flush_due(now_ms()) {
                    tracing::error!(%error, "flush scheduler");
                }
            })
        };
        let checkpoints = {
            let manager = Arc::clone(self);
            periodic(checkpoint_interval_ms, shutdown, move || {
                if let Err(error) = manager.checkpoint(&*high_watermark) {
                    tracing::error!(%error, "writing checkpoints");
                }
            })
        };
        vec![retention, flush, checkpoints]
    }

    /// Clean shutdown: flushes and closes every log (indexes trimmed), writes the
    /// checkpoints (high watermarks from `high_watermark`, see [`LogManager::checkpoint`]),
    /// then the clean-shutdown marker in every dir whose logs all closed cleanly. Returns the
    /// first error.
    pub fn shutdown(&self, high_watermark: &HighWatermarkFn) -> Result<(), LogError> {
        let mut failed_dirs = vec![false; self.dirs.len()];
        let mut first_error = None;
        let logs: Vec<(usize, Arc<Log>)> = self
            .read_logs()
            .values()
            .map(|(d, log)| (*d, Arc::clone(log)))
            .collect();
        for (dir_index, log) in logs {
            if let Err(error) = log.close() {
                tracing::error!(%error, topic_partition = %log.topic_partition(), "closing log");
                failed_dirs[dir_index] = true;
                first_error.get_or_insert(error);
            }
        }
        if let Err(error) = self.checkpoint(high_watermark) {
            failed_dirs.iter_mut().for_each(|failed| *failed = true);
            first_error.get_or_insert(error);
        }
        for (dir, failed) in self.dirs.iter().zip(failed_dirs) {
            if failed {
                continue;
            }
            let marker = dir.path.join(CLEAN_SHUTDOWN_MARKER);
            let written = File::create(&marker)
                .and_then(|f| f.sync_all())
                .map_err(|e| LogError::io("writing clean-shutdown marker", &marker, e))
                .and_then(|()| sync_dir(&dir.path));
            if let Err(error) = written {
                first_error.get_or_insert(error);
            }
        }
        tracing::info!("log manager shut down");
        first_error.map_or(Ok(()), Err)
    }
}

/// Index of the directory with the fewest partitions; ties go to the first.
fn choose_dir(counts: &[usize]) -> usize {
    counts
        .iter()
        .enumerate()
        .min_by_key(|(index, count)| (**count, *index))
        .map_or(0, |(index, _)| index)
}

/// Runs `job` on the blocking pool every `period_ms` (first run after one period) until
/// `shutdown` is true or its sender is gone.
pub(crate) fn periodic(
    period_ms: u64,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    job: impl Fn() + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    let job = Arc::new(job);
    tokio::spawn(async move {
        let period = Duration::from_millis(period_ms.max(1));
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = interval.tick() => {
                    let job = Arc::clone(&job);
                    if let Err(error) = tokio::task::spawn_blocking(move || job()).await {
                        tracing::error!(%error, "log background task panicked");
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::choose_dir;

    #[test]
    fn placement_picks_the_fewest_partitions_first_on_ties() {
        assert_eq!(choose_dir(&[0, 0, 0]), 0);
        assert_eq!(choose_dir(&[1, 0, 0]), 1);
        assert_eq!(choose_dir(&[1, 1, 0]), 2);
        assert_eq!(choose_dir(&[2, 1, 1]), 1);
        assert_eq!(choose_dir(&[5]), 0);
    }
}
