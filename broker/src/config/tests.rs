use super::*;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_kafkas() {
    let cfg = BrokerConfig::from_properties(&props(&[])).unwrap();
    assert_eq!(cfg.broker_id, 0);
    assert_eq!(cfg.listener.bind, "0.0.0.0:9092".parse().unwrap());
    assert_eq!(cfg.listener.advertised_host, "127.0.0.1");
    assert_eq!(cfg.log_dirs, vec![PathBuf::from("/tmp/tributary-logs")]);
    assert_eq!(cfg.num_partitions, 1);
    assert_eq!(cfg.min_insync_replicas, 1);
    assert!(!cfg.unclean_leader_election_enable);
    assert_eq!(cfg.log_defaults.segment_bytes, 1 << 30);
    assert_eq!(cfg.log_defaults.segment_ms, 168 * 3_600_000);
    assert_eq!(cfg.log_defaults.retention_ms, 168 * 3_600_000);
    assert_eq!(cfg.log_defaults.retention_bytes, -1);
    assert_eq!(cfg.log_defaults.max_message_bytes, 1_048_588);
    assert_eq!(cfg.log_defaults.flush_messages, u64::MAX);
    assert_eq!(cfg.log_defaults.flush_ms, u64::MAX);
    assert_eq!(cfg.log_retention_check_interval_ms, 300_000);
}

#[test]
fn retention_ms_beats_minutes_beats_hours() {
    let cfg = BrokerConfig::from_properties(&props(&[
        ("log.retention.hours", "1"),
        ("log.retention.minutes", "2"),
    ]))
    .unwrap();
    assert_eq!(cfg.log_defaults.retention_ms, 120_000);
    let cfg = BrokerConfig::from_properties(&props(&[
        ("log.retention.minutes", "2"),
        ("log.retention.ms", "5"),
    ]))
    .unwrap();
    assert_eq!(cfg.log_defaults.retention_ms, 5);
    let cfg = BrokerConfig::from_properties(&props(&[("log.roll.hours", "1")])).unwrap();
    assert_eq!(cfg.log_defaults.segment_ms, 3_600_000);
}

#[test]
fn listeners_and_dirs_parse() {
    let cfg = BrokerConfig::from_properties(&props(&[
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("advertised.listeners", "PLAINTEXT://broker1.example:9093"),
        ("log.dirs", "/a, /b ,"),
    ]))
    .unwrap();
    assert_eq!(cfg.listener.bind, "127.0.0.1:0".parse().unwrap());
    assert_eq!(cfg.listener.advertised_host, "broker1.example");
    assert_eq!(cfg.listener.advertised_port, 9093);
    assert_eq!(cfg.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
}

#[test]
fn unknown_keys_are_an_error_but_kafka_only_keys_a_warning() {
    let err =
        BrokerConfig::from_properties(&props(&[("log.retention.hour", "1"), ("brokerid", "2")]))
            .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKeys(keys) if keys == &["brokerid", "log.retention.hour"]),
        "{err}"
    );
    let cfg = BrokerConfig::from_properties(&props(&[("num.network.threads", "3")])).unwrap();
    assert_eq!(cfg.ignored_keys, vec!["num.network.threads".to_owned()]);
}

#[test]
fn invalid_values_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("broker.id", "-1"),
        ("broker.id", "one"),
        ("listeners", "http://x:1"),
        ("listeners", "PLAINTEXT://x:99999"),
        ("listeners", "PLAINTEXT://a:1,PLAINTEXT://b:2"),
        ("num.partitions", "0"),
        ("log.segment.bytes", "1"),
        ("message.max.bytes", "-5"),
        ("auto.create.topics.enable", "maybe"),
        ("log.message.timestamp.type", "Wall"),
        ("log.retention.check.interval.ms", "0"),
    ];
    for (key, value) in cases {
        let err = BrokerConfig::from_properties(&props(&[(key, value)])).unwrap_err();
        match err {
            ConfigError::InvalidValue { key: k, .. } => assert_eq!(&k, key, "{key}={value}"),
            other => panic!("{key}={value}: unexpected {other}"),
        }
    }
}

#[test]
fn overrides_beat_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(&path, "# comment\nbroker.id=3\nnum.partitions = 4\n").unwrap();
    let cfg = BrokerConfig::load(Some(&path), &["broker.id=7".to_owned()]).unwrap();
    assert_eq!(cfg.broker_id, 7);
    assert_eq!(cfg.num_partitions, 4);
    assert!(matches!(
        BrokerConfig::load(Some(&path), &["nokey".to_owned()]),
        Err(ConfigError::BadOverride(_))
    ));
    assert!(matches!(
        BrokerConfig::load(Some(&dir.path().join("missing")), &[]),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn every_key_is_documented() {
    let doc = include_str!("../../../docs/configuration.md");
    for key in SUPPORTED_KEYS {
        assert!(
            doc.contains(&format!("`{}`", key.name)),
            "docs/configuration.md lacks {}",
            key.name
        );
    }
    for key in TOPIC_CONFIG_KEYS {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/configuration.md lacks topic key {key}"
        );
    }
}

#[test]
fn zookeeper_connection_timeout_defaults_to_the_session_timeout() {
    let cfg =
        BrokerConfig::from_properties(&props(&[("zookeeper.session.timeout.ms", "4000")])).unwrap();
    assert_eq!(cfg.zookeeper_connection_timeout_ms, 4000);
    let cfg = BrokerConfig::from_properties(&props(&[("zookeeper.connection.timeout.ms", "900")]))
        .unwrap();
    assert_eq!(cfg.zookeeper_connection_timeout_ms, 900);
    assert!(
        BrokerConfig::from_properties(&props(&[("zookeeper.connection.timeout.ms", "0")])).is_err()
    );
}

#[test]
fn replica_fetch_settings_default_and_parse_and_refuse_a_timeout_below_the_long_poll() {
    let cfg = BrokerConfig::from_properties(&props(&[])).unwrap();
    assert_eq!(cfg.replica_fetch, FetchSettings::default());
    assert_eq!(cfg.replica_fetch.wait_max_ms, 500);
    assert_eq!(cfg.replica_fetch.fetchers_per_leader, 1);
    let cfg = BrokerConfig::from_properties(&props(&[
        ("replica.fetch.wait.max.ms", "50"),
        ("replica.fetch.max.bytes", "65536"),
        ("replica.fetch.response.max.bytes", "1048576"),
        ("replica.fetch.backoff.ms", "0"),
        ("replica.socket.timeout.ms", "2000"),
        ("num.replica.fetchers", "4"),
    ]))
    .unwrap();
    assert_eq!(
        cfg.replica_fetch,
        FetchSettings {
            wait_max_ms: 50,
            max_bytes: 65_536,
            response_max_bytes: 1_048_576,
            backoff: Duration::ZERO,
            socket_timeout: Duration::from_secs(2),
            fetchers_per_leader: 4,
        }
    );
    for bad in [
        [
            ("replica.socket.timeout.ms", "500"),
            ("replica.fetch.wait.max.ms", "500"),
        ],
        [
            ("num.replica.fetchers", "0"),
            ("replica.fetch.wait.max.ms", "500"),
        ],
        [
            ("replica.fetch.max.bytes", "4294967296"),
            ("num.replica.fetchers", "1"),
        ],
    ] {
        let error = BrokerConfig::from_properties(&props(&bad)).unwrap_err();
        assert!(error.to_string().contains(bad[0].0), "{error}");
    }
}

#[test]
fn group_coordinator_keys_have_kafkas_defaults_and_ranges() {
    let cfg = BrokerConfig::from_properties(&props(&[])).unwrap();
    assert_eq!(cfg.groups, crate::group::GroupSettings::default());
    assert_eq!(cfg.groups.offsets_topic_num_partitions, 50);
    assert_eq!(cfg.groups.offsets_topic_replication_factor, 3);
    assert_eq!(cfg.groups.offsets_topic_segment_bytes, 104_857_600);
    assert_eq!(cfg.groups.offset_metadata_max_bytes, 4096);
    assert_eq!(cfg.groups.offsets_commit_timeout_ms, 5000);
    assert_eq!(cfg.groups.offsets_retention_ms, 7 * 24 * 3600 * 1000);
    assert_eq!(cfg.groups.offsets_retention_check_interval_ms, 600_000);
    assert!(cfg.ignored_keys.is_empty());

    let cfg = BrokerConfig::from_properties(&props(&[
        ("offsets.topic.num.partitions", "4"),
        ("offsets.topic.replication.factor", "1"),
        ("offset.metadata.max.bytes", "0"),
        ("offsets.retention.minutes", "1"),
        ("offsets.retention.check.interval.ms", "250"),
    ]))
    .unwrap();
    assert_eq!(cfg.groups.offsets_retention_ms, 60_000);
    assert_eq!(cfg.groups.offsets_retention_check_interval_ms, 250);
    assert_eq!(cfg.groups.offsets_topic_num_partitions, 4);
    assert_eq!(cfg.groups.offsets_topic_replication_factor, 1);
    assert_eq!(cfg.groups.offset_metadata_max_bytes, 0);
    assert!(
        cfg.ignored_keys.is_empty(),
        "offsets.topic.replication.factor is no longer ignored"
    );

    for (key, value) in [
        ("offsets.topic.num.partitions", "0"),
        ("offsets.topic.num.partitions", "10001"),
        ("offsets.topic.replication.factor", "0"),
        ("offsets.topic.segment.bytes", "13"),
        ("offset.metadata.max.bytes", "32768"),
        ("offsets.commit.timeout.ms", "0"),
        ("offsets.retention.minutes", "0"),
        ("offsets.retention.minutes", "2147483648"),
        ("offsets.retention.check.interval.ms", "0"),
    ] {
        let error = BrokerConfig::from_properties(&props(&[(key, value)])).unwrap_err();
        assert!(
            matches!(&error, ConfigError::InvalidValue { key: k, .. } if k == key),
            "{key}={value}: {error}"
        );
    }
}
