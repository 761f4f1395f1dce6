//! `/config/<type>/<name>` and `/config/changes/config_change_<seq>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Payload, PayloadKind};

/// `/config/<type>/<name>` (PERSISTENT), v1: an entity's config overrides, values always strings.
///
/// `{"version":1,"config":{"cleanup.policy":"compact","retention.ms":"86400000"}}`. Topic
/// creation writes `/config/topics/<t>` (possibly `"config":{}`) before `/brokers/topics/<t>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EntityConfig {
    pub version: i32,
    pub config: BTreeMap<String, String>,
}

impl EntityConfig {
    pub const VERSION: i32 = 1;

    pub fn new(config: BTreeMap<String, String>) -> Self {
        Self {
            version: Self::VERSION,
            config,
        }
    }
}

impl Payload for EntityConfig {
    const KIND: PayloadKind = PayloadKind::EntityConfig;
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 1..=1;

    fn version(&self) -> i64 {
        self.version.into()
    }
}

/// `/config/changes/config_change_<seq>` (PERSISTENT_SEQUENTIAL), v2: only a trigger; brokers
/// re-read `/config/<entity_path>`. `{"version":2,"entity_path":"topics/orders"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChangeNotification {
    pub version: i32,
    /// `<type>/<name>`, e.g. `topics/orders`, `clients/app1`, `brokers/<default>`.
    pub entity_path: String,
}

impl ConfigChangeNotification {
    pub const VERSION: i32 = 2;

    /// The notification for a topic's config (`topics/<topic>`).
    pub fn for_topic(topic: &str) -> Self {
        Self {
            version: Self::VERSION,
            entity_path: format!("topics/{topic}"),
        }
    }
}

impl Payload for ConfigChangeNotification {
    const KIND: PayloadKind = PayloadKind::ConfigChangeNotification;
    // v1 (pre-0.10.1) had entity_type/entity_name instead of entity_path; not readable here.
    const READABLE_VERSIONS: std::ops::RangeInclusive<i32> = 2..=2;

    fn version(&self) -> i64 {
        self.version.into()
    }
}
