//! The partitions this broker hosts, by topic-partition.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::log::{LogConfig, LogError, LogManager, TopicPartition};
use crate::replica::Partition;

/// Owns the map of hosted partitions. Lookups take a short read lock; the map changes only on
/// topic creation and deletion.
#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
}

impl ReplicaManager {
    /// A manager over the given log manager, hosting nothing yet.
    pub fn new(logs: Arc<LogManager>) -> Self {
        Self {
            logs,
            partitions: RwLock::new(HashMap::new()),
        }
    }

    /// The partition, if hosted here.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partition map lock")
            .get(tp)
            .cloned()
    }

    /// Opens (or creates) the partition's log and starts hosting it.
    pub fn host(&self, tp: &TopicPartition, config: LogConfig) -> Result<Arc<Partition>, LogError> {
        if let Some(existing) = self.get(tp) {
            existing.log().set_config(config);
            return Ok(existing);
        }
        // Logs found on disk at start-up were opened with the broker defaults; this applies
        // the topic's overrides to them.
        let log = self.logs.get_or_create(tp, config.clone())?;
        log.set_config(config);
        let partition = Arc::new(Partition::new(tp.clone(), log, 0));
        let mut map = self.partitions.write().expect("partition map lock");
        Ok(map.entry(tp.clone()).or_insert(partition).clone())
    }

    /// Stops hosting the partition and deletes its data.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), LogError> {
        self.partitions
            .write()
            .expect("partition map lock")
            .remove(tp);
        self.logs.delete(tp)
    }

    /// The high watermark of a hosted partition, for retention; 0 for a partition that is not
    /// hosted (so retention deletes nothing of it).
    pub fn high_watermark(&self, tp: &TopicPartition) -> i64 {
        self.get(tp).map_or(0, |p| p.high_watermark())
    }
}
