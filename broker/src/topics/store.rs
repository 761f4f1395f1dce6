//! The local topic registry: which topics exist, their partition count, replication factor and
//! configuration overrides.
//!
//! This milestone runs one broker without ZooKeeper, so topic metadata lives in one JSON file in
//! the first log directory (the ZooKeeper milestone moves it to `/brokers/topics/<t>` and
//! `/config/topics/<t>`). File `tributary-topics.json`, written to `.tmp`, fsync'd and renamed,
//! so a crash leaves either the old or the new version:
//!
//! ```json
//! {"version":1,"topics":{"orders":{"partitions":3,"replication_factor":1,"configs":{"retention.ms":"86400000"}}}}
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the registry inside the first log directory.
pub const TOPICS_FILE: &str = "tributary-topics.json";

/// One topic's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDefinition {
    /// Number of partitions (ids 0..partitions).
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic-level configuration overrides.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicsFile {
    version: u32,
    topics: BTreeMap<String, TopicDefinition>,
}

/// Why the registry could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TopicStoreError {
    /// Reading or writing the file failed.
    #[error("{action} topic registry {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("topic registry {path} is malformed")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The file has a version this build does not know.
    #[error("topic registry {path} has version {version}; this build reads version 1")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
}

/// The persisted set of topics. Owned by the admin path; readers get clones.
#[derive(Debug)]
pub struct TopicStore {
    path: PathBuf,
    topics: BTreeMap<String, TopicDefinition>,
}

impl TopicStore {
    /// Loads the registry from `dir` (empty if the file does not exist yet).
    pub fn open(dir: &Path) -> Result<Self, TopicStoreError> {
        let path = dir.join(TOPICS_FILE);
        let topics = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: TopicsFile = serde_json::from_slice(&bytes).map_err(|source| {
                    TopicStoreError::Malformed {
                        path: path.clone(),
                        source,
                    }
                })?;
                if file.version != 1 {
                    return Err(TopicStoreError::UnsupportedVersion {
                        path,
                        version: file.version,
                    });
                }
                file.topics
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(TopicStoreError::Io {
                    action: "cannot read",
                    path,
                    source,
                });
            }
        };
        Ok(Self { path, topics })
    }

    /// All topics.
    pub fn topics(&self) -> &BTreeMap<String, TopicDefinition> {
        &self.topics
    }

    /// `requested`, or every topic's name when nothing is requested (Metadata and
    /// DescribeTopics semantics).
    pub fn requested_or_all(&self, requested: Vec<String>) -> Vec<String> {
        if requested.is_empty() {
            self.topics.keys().cloned().collect()
        } else {
            requested
        }
    }

    /// One topic.
    pub fn get(&self, name: &str) -> Option<&TopicDefinition> {
        self.topics.get(name)
    }

    /// Adds or replaces a topic and persists the registry.
    pub fn put(&mut self, name: &str, definition: TopicDefinition) -> Result<(), TopicStoreError> {
        let previous = self.topics.insert(name.to_owned(), definition);
        self.persist().inspect_err(|_| {
            match &previous {
                Some(p) => self.topics.insert(name.to_owned(), p.clone()),
                None => self.topics.remove(name),
            };
        })
    }

    /// Removes a topic and persists the registry.
    pub fn remove(&mut self, name: &str) -> Result<Option<TopicDefinition>, TopicStoreError> {
        let removed = self.topics.remove(name);
        if let Some(def) = &removed
            && let Err(e) = self.persist()
        {
            self.topics.insert(name.to_owned(), def.clone());
            return Err(e);
        }
        Ok(removed)
    }

    fn persist(&self) -> Result<(), TopicStoreError> {
        let file = TopicsFile {
            version: 1,
            topics: self.topics.clone(),
        };
        let bytes = serde_json::to_vec(&file).expect("topic registry serializes");
        let tmp = self.path.with_extension("json.tmp");
        let io = |action, source| TopicStoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let mut out = std::fs::File::create(&tmp).map_err(|e| io("cannot create", e))?;
        out.write_all(&bytes).map_err(|e| io("cannot write", e))?;
        out.sync_all().map_err(|e| io("cannot fsync", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io("cannot rename", e))?;
        if let Some(parent) = self.path.parent() {
            std::fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("cannot fsync dir of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_pins_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TopicStore::open(dir.path()).unwrap();
        assert!(store.topics().is_empty());
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_owned(), "86400000".to_owned());
        store
            .put(
                "orders",
                TopicDefinition {
                    partitions: 3,
                    replication_factor: 1,
                    configs,
                },
            )
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(TOPICS_FILE)).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"topics":{"orders":{"partitions":3,"replication_factor":1,"configs":{"retention.ms":"86400000"}}}}"#
        );
        let mut reopened = TopicStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get("orders").unwrap().partitions, 3);
        assert!(reopened.remove("orders").unwrap().is_some());
        assert!(TopicStore::open(dir.path()).unwrap().topics().is_empty());
    }

    #[test]
    fn malformed_or_future_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOPICS_FILE), "{not json").unwrap();
        assert!(matches!(
            TopicStore::open(dir.path()),
            Err(TopicStoreError::Malformed { .. })
        ));
        std::fs::write(dir.path().join(TOPICS_FILE), r#"{"version":9,"topics":{}}"#).unwrap();
        assert!(matches!(
            TopicStore::open(dir.path()),
            Err(TopicStoreError::UnsupportedVersion { version: 9, .. })
        ));
    }
}
