//! Broker configuration: `server.properties` with Kafka's key names and defaults, plus
//! `--override key=value` flags.
//!
//! Loading is pure (text in, [`BrokerConfig`] or a [`ConfigError`] out) so every rule is unit
//! tested; only [`BrokerConfig::load`] touches the file system.

mod keys;
mod topic;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use keys::{IGNORED_KAFKA_KEYS, KeySpec, SUPPORTED_KEYS};
pub use topic::{
    TOPIC_CONFIG_KEYS, TopicConfigError, effective_log_config, validate_topic_configs,
};

use crate::group::GroupSettings;
use crate::log::LogConfig;
use crate::log::cleaner::CleanerSettings;
use crate::replica::FetchSettings;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The properties file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The properties file is not valid Java properties syntax.
    #[error("cannot parse config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An `--override` is not of the form `key=value`.
    #[error("override {0:?} is not of the form key=value")]
    BadOverride(String),
    /// Keys that Tributary does not know.
    #[error("unknown configuration keys: {}", .0.join(", "))]
    UnknownKeys(Vec<String>),
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The listener a broker binds and advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Address to bind (port 0 = any free port).
    pub bind: SocketAddr,
    /// Host to advertise to clients.
    pub advertised_host: String,
    /// Port to advertise; 0 = the port actually bound.
    pub advertised_port: u16,
}

/// The broker's configuration, typed and validated.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `broker.id`.
    pub broker_id: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `listeners` / `advertised.listeners`.
    pub listener: Listener,
    /// `log.dirs` (or `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// `zookeeper.connect`.
    pub zookeeper_connect: Option<String>,
    /// `zookeeper.session.timeout.ms`.
    pub zookeeper_session_timeout_ms: u64,
    /// `zookeeper.connection.timeout.ms` (defaults to the session timeout, as in Kafka).
    pub zookeeper_connection_timeout_ms: u64,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election_enable: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `controlled.shutdown.enable`.
    pub controlled_shutdown_enable: bool,
    /// `controlled.shutdown.max.retries`.
    pub controlled_shutdown_max_retries: u32,
    /// `controlled.shutdown.retry.backoff.ms`.
    pub controlled_shutdown_retry_backoff_ms: u64,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.*`, `replica.socket.timeout.ms` and `num.replica.fetchers`.
    pub replica_fetch: FetchSettings,
    /// `offsets.*` and `offset.metadata.max.bytes`: the group coordinator.
    pub groups: GroupSettings,
    /// The broker-wide defaults of every topic's log settings.
    pub log_defaults: LogConfig,
    /// `log.cleaner.enable`, `log.cleaner.threads`, `log.cleaner.backoff.ms`,
    /// `log.cleaner.dedupe.buffer.size`.
    pub cleaner: CleanerSettings,
    /// Keys that were given but ignored (Kafka keys with no meaning here), for a warning.
    pub ignored_keys: Vec<String>,
}

impl BrokerConfig {
    /// Reads `path` (if given), applies `overrides` (`key=value`), and validates.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, ConfigError> {
        let mut props = match path {
            Some(path) => {
                let file = std::fs::File::open(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
                    ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    }
                })?
            }
            None => Default::default(),
        };
        for item in overrides {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            props.insert(key.trim().to_owned(), value.trim().to_owned());
        }
        Self::from_properties(&props.into_iter().collect())
    }

    /// Builds the configuration from already-parsed properties.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let unknown: Vec<String> = props
            .keys()
            .filter(|k| keys::spec(k).is_none() && !IGNORED_KAFKA_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(unknown));
        }
        let ignored_keys = props
            .keys()
            .filter(|k| IGNORED_KAFKA_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let p = Props(props);

        let broker_id: i32 = p.parse("broker.id")?;
        if broker_id < 0 {
            return Err(p.invalid(
                "broker.id",
                "must be >= 0 (automatic id generation is not supported)",
            ));
        }
        let listener = parse_listener(&p)?;
        let log_dirs: Vec<PathBuf> = match props.get("log.dirs") {
            Some(dirs) => dirs
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => vec![PathBuf::from(p.text("log.dir"))],
        };
        if log_dirs.is_empty() {
            return Err(p.invalid("log.dirs", "names no directory"));
        }
        let num_partitions: i32 = p.parse("num.partitions")?;
        if num_partitions < 1 {
            return Err(p.invalid("num.partitions", "must be >= 1"));
        }
        let default_replication_factor: i32 = p.parse("default.replication.factor")?;
        if default_replication_factor < 1 {
            return Err(p.invalid("default.replication.factor", "must be >= 1"));
        }
        let min_insync_replicas: i32 = p.parse("min.insync.replicas")?;
        if min_insync_replicas < 1 {
            return Err(p.invalid("min.insync.replicas", "must be >= 1"));
        }
        let session: u64 = p.parse("zookeeper.session.timeout.ms")?;

        let log_defaults = log_defaults(&p)?;
        Ok(Self {
            broker_id,
            rack: props.get("broker.rack").cloned(),
            listener,
            log_dirs,
            zookeeper_connect: props.get("zookeeper.connect").cloned(),
            zookeeper_session_timeout_ms: session,
            zookeeper_connection_timeout_ms: match props.get("zookeeper.connection.timeout.ms") {
                Some(_) => p.parse_positive("zookeeper.connection.timeout.ms")?,
                None => session,
            },
            num_partitions,
            default_replication_factor,
            auto_create_topics_enable: p.parse_bool("auto.create.topics.enable")?,
            delete_topic_enable: p.parse_bool("delete.topic.enable")?,
            min_insync_replicas,
            unclean_leader_election_enable: p.parse_bool("unclean.leader.election.enable")?,
            auto_leader_rebalance_enable: p.parse_bool("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: p
                .parse_positive("leader.imbalance.check.interval.seconds")?,
            leader_imbalance_per_broker_percentage: p
                .parse("leader.imbalance.per.broker.percentage")?,
            controlled_shutdown_enable: p.parse_bool("controlled.shutdown.enable")?,
            controlled_shutdown_max_retries: p.parse("controlled.shutdown.max.retries")?,
            controlled_shutdown_retry_backoff_ms: p
                .parse("controlled.shutdown.retry.backoff.ms")?,
            socket_request_max_bytes: p.parse_positive("socket.request.max.bytes")? as usize,
            log_retention_check_interval_ms: p.parse_positive("log.retention.check.interval.ms")?,
            log_flush_offset_checkpoint_interval_ms: p
                .parse_positive("log.flush.offset.checkpoint.interval.ms")?,
            replica_lag_time_max_ms: p.parse_positive("replica.lag.time.max.ms")?,
            replica_fetch: parse_fetch_settings(&p)?,
            groups: parse_group_settings(&p)?,
            log_defaults,
            cleaner: parse_cleaner_settings(&p)?,
            ignored_keys,
        })
    }
}

fn log_defaults(p: &Props<'_>) -> Result<LogConfig, ConfigError> {
    let hour_ms = 3_600_000i64;
    let segment_ms = match p.0.get("log.roll.ms") {
        Some(_) => p.parse::<i64>("log.roll.ms")?,
        None => p.parse::<i64>("log.roll.hours")? * hour_ms,
    };
    let retention_ms = if p.0.contains_key("log.retention.ms") {
        p.parse::<i64>("log.retention.ms")?
    } else if p.0.contains_key("log.retention.minutes") {
        p.parse::<i64>("log.retention.minutes")?
            .saturating_mul(60_000)
    } else {
        p.parse::<i64>("log.retention.hours")?
            .saturating_mul(hour_ms)
    };
    // The topic-level parser owns the range checks, so broker defaults and topic overrides
    // are validated by the same rules.
    let mut as_topic = BTreeMap::new();
    as_topic.insert("segment.bytes".to_owned(), p.text("log.segment.bytes"));
    as_topic.insert("segment.ms".to_owned(), segment_ms.to_string());
    as_topic.insert(
        "segment.index.bytes".to_owned(),
        p.text("log.index.size.max.bytes"),
    );
    as_topic.insert(
        "index.interval.bytes".to_owned(),
        p.text("log.index.interval.bytes"),
    );
    as_topic.insert("retention.ms".to_owned(), retention_ms.to_string());
    as_topic.insert("retention.bytes".to_owned(), p.text("log.retention.bytes"));
    as_topic.insert(
        "flush.messages".to_owned(),
        p.text("log.flush.interval.messages"),
    );
    if let Some(ms) = p.0.get("log.flush.interval.ms") {
        as_topic.insert("flush.ms".to_owned(), ms.clone());
    }
    as_topic.insert("max.message.bytes".to_owned(), p.text("message.max.bytes"));
    as_topic.insert(
        "message.timestamp.type".to_owned(),
        p.text("log.message.timestamp.type"),
    );
    as_topic.insert(
        "file.delete.delay.ms".to_owned(),
        p.text("log.segment.delete.delay.ms"),
    );
    as_topic.insert("cleanup.policy".to_owned(), p.text("log.cleanup.policy"));
    for (topic_key, broker_key) in CLEANER_TOPIC_DEFAULTS {
        as_topic.insert((*topic_key).to_owned(), p.text(broker_key));
    }
    effective_log_config(&LogConfig::default(), &as_topic).map_err(|e| ConfigError::InvalidValue {
        key: broker_key_for(&e.key).to_owned(),
        value: e.value,
        reason: e.reason,
    })
}

/// The broker-level key behind a topic-level key, for error messages.
fn broker_key_for(topic_key: &str) -> &str {
    match topic_key {
        "segment.bytes" => "log.segment.bytes",
        "segment.ms" => "log.roll.ms",
        "segment.index.bytes" => "log.index.size.max.bytes",
        "index.interval.bytes" => "log.index.interval.bytes",
        "retention.ms" => "log.retention.ms",
        "retention.bytes" => "log.retention.bytes",
        "flush.messages" => "log.flush.interval.messages",
        "flush.ms" => "log.flush.interval.ms",
        "max.message.bytes" => "message.max.bytes",
        "message.timestamp.type" => "log.message.timestamp.type",
        "file.delete.delay.ms" => "log.segment.delete.delay.ms",
        "cleanup.policy" => "log.cleanup.policy",
        other => CLEANER_TOPIC_DEFAULTS
            .iter()
            .find(|(topic_key, _)| *topic_key == other)
            .map_or(other, |(_, broker_key)| broker_key),
    }
}

/// Topic-level cleaner keys and the broker keys holding their defaults.
const CLEANER_TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
];

fn parse_cleaner_settings(p: &Props<'_>) -> Result<CleanerSettings, ConfigError> {
    let threads = p.parse_positive("log.cleaner.threads")?;
    if threads > 1 {
        tracing::warn!(
            threads,
            "log.cleaner.threads > 1: Tributary runs one cleaner task"
        );
    }
    Ok(CleanerSettings {
        enabled: p.parse_bool("log.cleaner.enable")?,
        backoff_ms: p.parse_positive("log.cleaner.backoff.ms")?,
        dedupe_buffer_bytes: usize::try_from(p.parse_positive("log.cleaner.dedupe.buffer.size")?)
            .map_err(|_| {
            p.invalid("log.cleaner.dedupe.buffer.size", "too large")
        })?,
    })
}

fn parse_fetch_settings(p: &Props<'_>) -> Result<FetchSettings, ConfigError> {
    let positive_i32 = |key: &str| {
        i32::try_from(p.parse_positive(key)?)
            .map_err(|_| p.invalid(key, "must be at most 2147483647"))
    };
    let settings = FetchSettings {
        wait_max_ms: positive_i32("replica.fetch.wait.max.ms")?,
        max_bytes: positive_i32("replica.fetch.max.bytes")?,
        response_max_bytes: positive_i32("replica.fetch.response.max.bytes")?,
        backoff: Duration::from_millis(p.parse("replica.fetch.backoff.ms")?),
        socket_timeout: Duration::from_millis(p.parse_positive("replica.socket.timeout.ms")?),
        fetchers_per_leader: u32::try_from(p.parse_positive("num.replica.fetchers")?)
            .map_err(|_| p.invalid("num.replica.fetchers", "too large"))?,
    };
    if settings.socket_timeout <= Duration::from_millis(settings.wait_max_ms as u64) {
        return Err(p.invalid(
            "replica.socket.timeout.ms",
            "must be greater than replica.fetch.wait.max.ms",
        ));
    }
    Ok(settings)
}

fn parse_group_settings(p: &Props<'_>) -> Result<GroupSettings, ConfigError> {
    let in_range = |key: &str, max: u64| {
        let value = p.parse_positive(key)?;
        if value > max {
            return Err(p.invalid(key, &format!("must be at most {max}")));
        }
        Ok(value)
    };
    let metadata_max: u64 = p.parse("offset.metadata.max.bytes")?;
    // The metadata string's length is an int16 in the offsets records.
    if metadata_max > 32_767 {
        return Err(p.invalid("offset.metadata.max.bytes", "must be at most 32767"));
    }
    let segment_bytes: u64 = p.parse("offsets.topic.segment.bytes")?;
    // The same floor as the topic-level segment.bytes the value becomes.
    if segment_bytes < 14 {
        return Err(p.invalid("offsets.topic.segment.bytes", "must be >= 14"));
    }
    let min_session = in_range("group.min.session.timeout.ms", i32::MAX as u64)? as i32;
    let max_session = in_range("group.max.session.timeout.ms", i32::MAX as u64)? as i32;
    if max_session < min_session {
        return Err(p.invalid(
            "group.max.session.timeout.ms",
            "must be at least group.min.session.timeout.ms",
        ));
    }
    let initial_delay: u64 = p.parse("group.initial.rebalance.delay.ms")?;
    if initial_delay > i32::MAX as u64 {
        return Err(p.invalid(
            "group.initial.rebalance.delay.ms",
            "must be at most 2147483647",
        ));
    }
    Ok(GroupSettings {
        offsets_topic_num_partitions: in_range("offsets.topic.num.partitions", 10_000)? as i32,
        offsets_topic_replication_factor: in_range("offsets.topic.replication.factor", 32_767)?
            as i32,
        offsets_topic_segment_bytes: segment_bytes,
        offset_metadata_max_bytes: metadata_max as usize,
        offsets_commit_timeout_ms: p.parse_positive("offsets.commit.timeout.ms")?,
        offsets_load_buffer_size: in_range("offsets.load.buffer.size", i32::MAX as u64)? as usize,
        offsets_retention_ms: in_range("offsets.retention.minutes", i32::MAX as u64)? as i64
            * 60_000,
        offsets_retention_check_interval_ms: p
            .parse_positive("offsets.retention.check.interval.ms")?,
        group_min_session_timeout_ms: min_session,
        group_max_session_timeout_ms: max_session,
        group_initial_rebalance_delay_ms: initial_delay as i32,
    })
}

fn parse_listener(p: &Props<'_>) -> Result<Listener, ConfigError> {
    let (bind_host, bind_port) = parse_endpoint(p, "listeners", &p.text("listeners"))?;
    let bind_ip = if bind_host.is_empty() {
        "0.0.0.0".to_owned()
    } else {
        bind_host.clone()
    };
    let bind = (bind_ip.as_str(), bind_port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| p.invalid("listeners", "host does not resolve"))?;
    let (advertised_host, advertised_port) = match p.0.get("advertised.listeners") {
        Some(text) => parse_endpoint(p, "advertised.listeners", text)?,
        None => (bind_host, bind_port),
    };
    let advertised_host = if advertised_host.is_empty() || advertised_host == "0.0.0.0" {
        "127.0.0.1".to_owned()
    } else {
        advertised_host
    };
    Ok(Listener {
        bind,
        advertised_host,
        advertised_port,
    })
}

/// Parses `PLAINTEXT://host:port` (one listener; the only protocol is PLAINTEXT for now).
fn parse_endpoint(p: &Props<'_>, key: &str, text: &str) -> Result<(String, u16), ConfigError> {
    let first = text.split(',').next().unwrap_or_default().trim();
    if text.contains(',') {
        return Err(p.invalid_value(key, text, "only one listener is supported"));
    }
    let rest = first
        .strip_prefix("PLAINTEXT://")
        .ok_or_else(|| p.invalid_value(key, text, "expected PLAINTEXT://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| p.invalid_value(key, text, "expected PLAINTEXT://host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| p.invalid_value(key, text, "port is not a number in 0..=65535"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((host, port))
}

/// Typed access to the properties, falling back to the table's defaults.
struct Props<'a>(&'a BTreeMap<String, String>);

impl Props<'_> {
    fn text(&self, key: &str) -> String {
        self.0
            .get(key)
            .cloned()
            .or_else(|| keys::spec(key).and_then(|s| s.default).map(str::to_owned))
            .unwrap_or_default()
    }

    fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.text(key);
        text.trim()
            .parse()
            .map_err(|e: T::Err| self.invalid_value(key, &text, &e.to_string()))
    }

    fn parse_positive(&self, key: &str) -> Result<u64, ConfigError> {
        let value: u64 = self.parse(key)?;
        if value == 0 {
            return Err(self.invalid(key, "must be > 0"));
        }
        Ok(value)
    }

    fn parse_bool(&self, key: &str) -> Result<bool, ConfigError> {
        let text = self.text(key);
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid_value(key, &text, "expected true or false")),
        }
    }

    fn invalid(&self, key: &str, reason: &str) -> ConfigError {
        self.invalid_value(key, &self.text(key), reason)
    }

    fn invalid_value(&self, key: &str, value: &str, reason: &str) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
