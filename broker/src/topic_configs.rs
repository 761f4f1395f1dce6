//! Topic-level configuration overrides as this broker knows them (the content of
//! `/config/topics/<t>`), read when the broker starts hosting a topic and refreshed when a
//! `/config/changes` notification names the topic.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// Overrides by topic. Topics without an entry use the broker defaults.
#[derive(Debug, Default)]
pub struct TopicConfigs {
    overrides: RwLock<HashMap<String, BTreeMap<String, String>>>,
}

impl TopicConfigs {
    /// No overrides known.
    pub fn new() -> Self {
        Self::default()
    }

    /// The overrides of `topic` (empty if none are known).
    pub fn get(&self, topic: &str) -> BTreeMap<String, String> {
        self.overrides
            .read()
            .expect("topic configs lock")
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether overrides of `topic` have been loaded.
    pub fn contains(&self, topic: &str) -> bool {
        self.overrides
            .read()
            .expect("topic configs lock")
            .contains_key(topic)
    }

    /// Replaces the overrides of `topic`.
    pub fn set(&self, topic: &str, overrides: BTreeMap<String, String>) {
        self.overrides
            .write()
            .expect("topic configs lock")
            .insert(topic.to_owned(), overrides);
    }

    /// Forgets `topic` (deleted).
    pub fn remove(&self, topic: &str) {
        self.overrides
            .write()
            .expect("topic configs lock")
            .remove(topic);
    }
}
