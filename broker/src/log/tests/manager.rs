//! `LogManager`: placement, locking, deletion, shutdown markers and checkpoints.

use std::path::PathBuf;
use std::sync::Arc;

use super::*;
use crate::log::checkpoint;
use crate::log::{
    CLEAN_SHUTDOWN_MARKER, LOG_START_OFFSET_CHECKPOINT, LogError, LogManager,
    RECOVERY_POINT_CHECKPOINT, REPLICATION_OFFSET_CHECKPOINT, TopicPartition,
};

/// For managers whose partitions no replica layer hosts.
fn no_high_watermarks(_: &TopicPartition) -> Option<i64> {
    None
}

fn dirs(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("data{i}"))).collect()
}

#[test]
fn new_partitions_go_to_the_dir_with_the_fewest() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 3);
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    let placed: Vec<PathBuf> = (0..5)
        .map(|p| {
            let tp = TopicPartition::new("orders", p);
            manager.get_or_create(&tp, LogConfig::default()).unwrap();
            manager.log_dir_of(&tp).unwrap()
        })
        .collect();
    assert_eq!(
        placed,
        [&dirs[0], &dirs[1], &dirs[2], &dirs[0], &dirs[1]].map(|d| d.clone())
    );
    assert!(dirs[2].join("orders-2").is_dir());
    // Existing logs are returned as they are.
    let again = manager
        .get_or_create(&TopicPartition::new("orders", 0), LogConfig::default())
        .unwrap();
    assert!(Arc::ptr_eq(
        &again,
        &manager.get(&TopicPartition::new("orders", 0)).unwrap()
    ));
    assert_eq!(manager.logs().len(), 5);
    manager.shutdown(&no_high_watermarks).unwrap();
    drop(manager);

    // After a restart the counts include the loaded logs: dir 2 has the fewest.
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    assert_eq!(manager.logs().len(), 5);
    let tp = TopicPartition::new("payments-eu", 0);
    manager.get_or_create(&tp, LogConfig::default()).unwrap();
    assert_eq!(manager.log_dir_of(&tp).unwrap(), dirs[2]);
    assert!(dirs[2].join("payments-eu-0").is_dir());
}

#[test]
fn a_second_manager_on_the_same_dir_fails_clearly() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 2);
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    match LogManager::open(&dirs[1..], LogConfig::default()) {
        Err(error @ LogError::LogDirLocked { .. }) => {
            assert!(
                error.to_string().contains("locked by another broker"),
                "{error}"
            );
        }
        other => panic!("expected LogDirLocked, got {other:?}"),
    }
    drop(manager);
    LogManager::open(&dirs, LogConfig::default()).expect("lock released on drop");
}

#[test]
fn delete_removes_the_partition_and_its_data() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 1);
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    let tp = TopicPartition::new("t", 3);
    let log = manager.get_or_create(&tp, LogConfig::default()).unwrap();
    log.append_as_leader(bytes_mut(&[&batch(2, 5, 0, 0)]), 0, 0)
        .unwrap();
    manager.delete(&tp).unwrap();
    assert!(manager.get(&tp).is_none());
    assert!(!dirs[0].join("t-3").exists());
    assert!(
        log.append_as_leader(bytes_mut(&[&batch(2, 5, 0, 0)]), 0, 0)
            .is_err(),
        "closed for appends"
    );
    manager.delete(&tp).unwrap(); // idempotent
    // A leftover `-delete` dir (crash before removal) is removed at the next start.
    std::fs::create_dir_all(dirs[0].join("t-4.0123456789abcdef0123456789abcdef-delete")).unwrap();
    drop(manager);
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    assert!(manager.logs().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(&dirs[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-delete"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn clean_shutdown_writes_marker_and_checkpoints_and_startup_removes_the_marker() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 2);
    let manager = LogManager::open(&dirs, small_config()).unwrap();
    for p in 0..2 {
        let log = manager
            .get_or_create(&TopicPartition::new("t", p), small_config())
            .unwrap();
        for i in 0..10 {
            log.append_as_leader(bytes_mut(&[&batch(3, 50, i, 0)]), 0, 0)
                .unwrap();
        }
    }
    manager.shutdown(&no_high_watermarks).unwrap();
    for dir in &dirs {
        assert!(dir.join(CLEAN_SHUTDOWN_MARKER).exists());
    }
    let recovery_points = checkpoint::read(&dirs[0].join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(recovery_points.get(&TopicPartition::new("t", 0)), Some(&30));
    assert_eq!(
        std::fs::read_to_string(dirs[1].join(LOG_START_OFFSET_CHECKPOINT)).unwrap(),
        "0\n1\nt 1 0\n"
    );
    drop(manager);

    let manager = LogManager::open(&dirs, small_config()).unwrap();
    for dir in &dirs {
        assert!(
            !dir.join(CLEAN_SHUTDOWN_MARKER).exists(),
            "removed at startup"
        );
    }
    let log = manager.get(&TopicPartition::new("t", 1)).unwrap();
    assert_eq!((log.log_end_offset(), log.recovery_point()), (30, 30));

    // Crash (no shutdown) with a torn tail: the next start recovers it.
    let path = log.dir().join("00000000000000000000.log");
    log.append_as_leader(bytes_mut(&[&batch(3, 50, 0, 0)]), 0, 0)
        .unwrap();
    let active = log.dir().join(format!(
        "{:020}.log",
        log.segment_base_offsets().last().unwrap()
    ));
    drop(log);
    drop(manager);
    let len = std::fs::metadata(&active).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let manager = LogManager::open(&dirs, small_config()).unwrap();
    assert_eq!(
        manager
            .get(&TopicPartition::new("t", 1))
            .unwrap()
            .log_end_offset(),
        30
    );
    assert!(path.exists());
}

#[test]
fn retention_and_flush_passes_cover_every_log() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 2);
    let config = LogConfig {
        segment_bytes: 300,
        retention_ms: 1_000,
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let manager = LogManager::open(&dirs, config.clone()).unwrap();
    for p in 0..2 {
        let log = manager
            .get_or_create(&TopicPartition::new("t", p), config.clone())
            .unwrap();
        for _ in 0..4 {
            log.append_as_leader(bytes_mut(&[&batch(2, 60, 0, 0)]), 0, 0)
                .unwrap();
        }
        assert_eq!(log.segment_count(), 4);
    }
    // Partition 0's HW is 4: only its first two segments may go; partition 1's HW is the end.
    let hw = |tp: &TopicPartition| if tp.partition == 0 { 4 } else { 8 };
    assert_eq!(manager.run_retention(10_000, &hw), 2 + 4);
    assert_eq!(
        manager
            .get(&TopicPartition::new("t", 0))
            .unwrap()
            .log_start_offset(),
        4
    );
    assert_eq!(
        manager
            .get(&TopicPartition::new("t", 1))
            .unwrap()
            .log_start_offset(),
        8
    );
    let remaining: Vec<String> = std::fs::read_dir(dirs[1].join("t-1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        remaining.iter().all(|n| !n.ends_with(".deleted")),
        "delay 0: unlinked in the same pass: {remaining:?}"
    );

    // flush_due: the rolled segments are fsync'd and the recovery point advances.
    let log = manager.get(&TopicPartition::new("t", 0)).unwrap();
    assert_eq!(log.recovery_point(), 0);
    manager.flush_due(10_000).unwrap();
    assert_eq!(log.recovery_point(), 6, "up to the active segment's base");
    log.set_config(LogConfig {
        flush_ms: 500,
        ..config
    });
    manager.flush_due(i64::MAX / 2).unwrap();
    assert_eq!(log.recovery_point(), 8);
    manager.checkpoint(&no_high_watermarks).unwrap();
    let recovery_points = checkpoint::read(&dirs[0].join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    assert_eq!(recovery_points.get(&TopicPartition::new("t", 0)), Some(&8));
}

#[tokio::test]
async fn background_tasks_run_and_stop_on_shutdown() {
    // (tokio's test-util feature is not enabled in this workspace, so this uses real time
    // with short intervals.)
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 1);
    let manager = Arc::new(LogManager::open(&dirs, LogConfig::default()).unwrap());
    manager
        .get_or_create(&TopicPartition::new("t", 0), LogConfig::default())
        .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handles = manager.spawn_background(
        20,
        20,
        Arc::new(|_: &TopicPartition| Some(i64::MAX)),
        shutdown,
    );
    assert_eq!(handles.len(), 3);
    for _ in 0..500 {
        if dirs[0].join(RECOVERY_POINT_CHECKPOINT).exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        dirs[0].join(RECOVERY_POINT_CHECKPOINT).exists(),
        "the checkpoint task ran"
    );
    stop.send(true).unwrap();
    for handle in handles {
        tokio::time::timeout(std::time::Duration::from_secs(5), handle)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }
}

#[test]
fn high_watermarks_round_trip_through_the_replication_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let dirs = dirs(root.path(), 2);
    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    for p in 0..3 {
        let log = manager
            .get_or_create(&TopicPartition::new("t", p), LogConfig::default())
            .unwrap();
        for _ in 0..5 {
            log.append_as_leader(bytes_mut(&[&batch(2, 10, 0, 0)]), 0, 0)
                .unwrap();
        }
    }
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 0)),
        None
    );
    // Partition 2 is not hosted by the replica layer: no entry.
    let hosted = |tp: &TopicPartition| (tp.partition < 2).then_some(4 + i64::from(tp.partition));
    manager.shutdown(&hosted).unwrap();
    assert_eq!(
        std::fs::read_to_string(dirs[0].join(REPLICATION_OFFSET_CHECKPOINT)).unwrap(),
        "0\n1\nt 0 4\n",
        "t-0 and t-2 live in dir 0, t-1 in dir 1"
    );
    drop(manager);

    let manager = LogManager::open(&dirs, LogConfig::default()).unwrap();
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 0)),
        Some(4)
    );
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 1)),
        Some(5)
    );
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 2)),
        None
    );
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("u", 0)),
        None
    );
    // Clamped to the log: after a truncation below it, the log end.
    manager
        .get(&TopicPartition::new("t", 1))
        .unwrap()
        .truncate_to(2)
        .unwrap();
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 1)),
        Some(2)
    );
    // Not hosted yet: the stored value is written back unchanged; hosted: the live one.
    let only_t0 = |tp: &TopicPartition| (tp.partition == 0).then_some(9);
    manager.checkpoint(&only_t0).unwrap();
    let stored = checkpoint::read(&dirs[1].join(REPLICATION_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(stored.get(&TopicPartition::new("t", 1)), Some(&5));
    let stored = checkpoint::read(&dirs[0].join(REPLICATION_OFFSET_CHECKPOINT)).unwrap();
    assert_eq!(stored.get(&TopicPartition::new("t", 0)), Some(&9));
    // A deleted partition loses its stored value.
    manager.delete(&TopicPartition::new("t", 1)).unwrap();
    manager.checkpoint(&no_high_watermarks).unwrap();
    let stored = checkpoint::read(&dirs[1].join(REPLICATION_OFFSET_CHECKPOINT)).unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    manager
        .get_or_create(&TopicPartition::new("t", 1), LogConfig::default())
        .unwrap();
    assert_eq!(
        manager.stored_high_watermark(&TopicPartition::new("t", 1)),
        None
    );
}
