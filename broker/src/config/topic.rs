//! Topic-level configuration: which keys a topic may override, how they are validated, and
//! the effective [`LogConfig`] = broker defaults + topic overrides. Pure functions.

use std::collections::BTreeMap;

use tributary_record::TimestampType;

use crate::log::LogConfig;

/// The keys a topic may override (Kafka's topic-level names).
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// A topic configuration entry that is unknown or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic config {key}={value:?}: {reason}")]
pub struct TopicConfigError {
    /// The key.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks topic overrides without applying them.
pub fn validate_topic_configs(
    overrides: &BTreeMap<String, String>,
) -> Result<(), TopicConfigError> {
    effective_log_config(&LogConfig::default(), overrides).map(|_| ())
}

/// The log settings of a topic: `defaults` with `overrides` applied.
pub fn effective_log_config(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicConfigError> {
    let mut config = defaults.clone();
    let mut compact = false;
    for (key, value) in overrides {
        let v = Value { key, value };
        match key.as_str() {
            "segment.bytes" => config.segment_bytes = v.int_at_least(14)? as u64,
            "segment.ms" => config.segment_ms = v.int_at_least(1)?,
            "segment.index.bytes" => config.segment_index_bytes = v.int_at_least(24)? as u64,
            "index.interval.bytes" => config.index_interval_bytes = v.int_at_least(0)? as u64,
            "retention.ms" => config.retention_ms = v.int_at_least(-1)?,
            "retention.bytes" => config.retention_bytes = v.int_at_least(-1)?,
            "flush.messages" => config.flush_messages = never_if_max(v.int_at_least(1)?),
            "flush.ms" => config.flush_ms = never_if_max(v.int_at_least(0)?),
            "max.message.bytes" => {
                let max = v.int_at_least(0)?;
                config.max_message_bytes = u32::try_from(max)
                    .ok()
                    .filter(|m| *m <= i32::MAX as u32)
                    .ok_or_else(|| v.error("must fit in a 32-bit signed integer"))?;
            }
            "message.timestamp.type" => {
                config.message_timestamp_type = match value.as_str() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(v.error("expected CreateTime or LogAppendTime")),
                }
            }
            "file.delete.delay.ms" => config.file_delete_delay_ms = v.int_at_least(0)? as u64,
            "cleanup.policy" => match value.as_str() {
                "delete" => compact = false,
                "compact" => compact = true,
                _ => return Err(v.error("expected delete or compact")),
            },
            "min.insync.replicas" => {
                v.int_at_least(1)?;
            }
            "unclean.leader.election.enable" => {
                if value != "true" && value != "false" {
                    return Err(v.error("expected true or false"));
                }
            }
            _ => return Err(v.error("unknown topic config key")),
        }
    }
    if compact {
        // A compacted topic (__consumer_offsets) keeps the latest value of every key however
        // old it is, so time and size retention never delete its segments. Until the log
        // cleaner runs, nothing is removed at all.
        config.retention_ms = -1;
        config.retention_bytes = -1;
    }
    Ok(config)
}

/// Kafka writes "never" as Long.MAX_VALUE; the log config uses u64::MAX.
fn never_if_max(value: i64) -> u64 {
    if value == i64::MAX {
        u64::MAX
    } else {
        value as u64
    }
}

struct Value<'a> {
    key: &'a str,
    value: &'a str,
}

impl Value<'_> {
    fn error(&self, reason: &str) -> TopicConfigError {
        TopicConfigError {
            key: self.key.to_owned(),
            value: self.value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn int_at_least(&self, min: i64) -> Result<i64, TopicConfigError> {
        let n: i64 = self
            .value
            .trim()
            .parse()
            .map_err(|_| self.error("not an integer"))?;
        if n < min {
            return Err(self.error(&format!("must be >= {min}")));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overrides_apply_on_top_of_defaults() {
        let defaults = LogConfig::default();
        let cfg = effective_log_config(
            &defaults,
            &map(&[
                ("retention.ms", "1000"),
                ("segment.bytes", "4096"),
                ("message.timestamp.type", "LogAppendTime"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.retention_ms, 1000);
        assert_eq!(cfg.segment_bytes, 4096);
        assert_eq!(cfg.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(cfg.max_message_bytes, defaults.max_message_bytes);
    }

    #[test]
    fn compacted_topics_are_never_deleted_by_retention() {
        let cfg = effective_log_config(
            &LogConfig::default(),
            &map(&[
                ("cleanup.policy", "compact"),
                ("retention.ms", "1000"),
                ("retention.bytes", "10"),
            ]),
        )
        .unwrap();
        assert_eq!((cfg.retention_ms, cfg.retention_bytes), (-1, -1));
        let cfg = effective_log_config(
            &LogConfig::default(),
            &map(&[("cleanup.policy", "delete"), ("retention.ms", "1000")]),
        )
        .unwrap();
        assert_eq!(cfg.retention_ms, 1000);
    }

    #[test]
    fn long_max_means_never_flush() {
        let cfg = effective_log_config(
            &LogConfig::default(),
            &map(&[("flush.messages", "9223372036854775807")]),
        )
        .unwrap();
        assert_eq!(cfg.flush_messages, u64::MAX);
        let cfg =
            effective_log_config(&LogConfig::default(), &map(&[("flush.messages", "1")])).unwrap();
        assert_eq!(cfg.flush_messages, 1);
    }

    #[test]
    fn bad_entries_are_refused_with_the_key_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("retention.ms", "soon", "not an integer"),
            ("retention.ms", "-2", "must be >= -1"),
            ("segment.bytes", "10", "must be >= 14"),
            (
                "message.timestamp.type",
                "Now",
                "expected CreateTime or LogAppendTime",
            ),
            (
                "cleanup.policy",
                "compact,delete",
                "expected delete or compact",
            ),
            ("max.message.bytes", "4294967296", "must fit"),
            ("min.insync.replicas", "0", "must be >= 1"),
            (
                "unclean.leader.election.enable",
                "yes",
                "expected true or false",
            ),
            ("retention.hours", "1", "unknown topic config key"),
        ];
        for (key, value, reason) in cases {
            let err = validate_topic_configs(&map(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, *key);
            assert!(err.reason.contains(reason), "{key}={value}: {}", err.reason);
        }
    }
}
