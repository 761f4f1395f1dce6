//! Topic administration against a real broker: validation, creation, configs, deletion.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tributary_proto::v1::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeTopicsRequest, ErrorCode, NewTopic,
};

#[tokio::test]
async fn create_validates_names_counts_factors_and_configs() {
    let (_zk, broker) = start().await;
    let mut admin = broker.admin_client().unwrap();
    type Case<'a> = (
        &'a str,
        i32,
        i32,
        Vec<(&'a str, &'a str)>,
        ErrorCode,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "bad name",
            1,
            1,
            vec![],
            ErrorCode::InvalidTopicException,
            "contains ' '",
        ),
        (
            "..",
            1,
            1,
            vec![],
            ErrorCode::InvalidTopicException,
            "cannot be",
        ),
        ("", 1, 1, vec![], ErrorCode::InvalidTopicException, "empty"),
        (
            "ok",
            -1,
            1,
            vec![],
            ErrorCode::InvalidPartitions,
            "num_partitions",
        ),
        (
            "ok",
            1,
            3,
            vec![],
            ErrorCode::InvalidReplicationFactor,
            "live brokers",
        ),
        (
            "ok",
            1,
            -2,
            vec![],
            ErrorCode::InvalidReplicationFactor,
            ">= 1",
        ),
        (
            "ok",
            1,
            1,
            vec![("retention.ms", "soon")],
            ErrorCode::InvalidConfig,
            "retention.ms",
        ),
        (
            "ok",
            1,
            1,
            vec![("no.such.key", "1")],
            ErrorCode::InvalidConfig,
            "unknown topic config key",
        ),
    ];
    for (name, partitions, rf, configs, code, says) in cases {
        let result = try_create_topic(&mut admin, name, partitions, rf, &configs).await;
        assert_eq!(
            result.error_code, code as i32,
            "{name}/{partitions}/{rf}: {}",
            result.error_message
        );
        assert!(
            result.error_message.contains(says),
            "{name}: {:?} should mention {says:?}",
            result.error_message
        );
    }
    let long = "x".repeat(250);
    assert_eq!(
        try_create_topic(&mut admin, &long, 1, 1, &[])
            .await
            .error_code,
        ErrorCode::InvalidTopicException as i32
    );

    // Nothing was created by the refused requests.
    let listed = admin
        .describe_topics(DescribeTopicsRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.topics.is_empty(), "{:?}", listed.topics);

    // Defaults, existing names, '.'/'_' collisions, duplicates within one request, validate_only.
    let created = try_create_topic(&mut admin, "my.topic", 0, 0, &[]).await;
    assert_eq!(
        (
            created.error_code,
            created.num_partitions,
            created.replication_factor
        ),
        (0, 1, 1)
    );
    assert_eq!(
        try_create_topic(&mut admin, "my.topic", 1, 1, &[])
            .await
            .error_code,
        ErrorCode::TopicAlreadyExists as i32
    );
    let collision = try_create_topic(&mut admin, "my_topic", 1, 1, &[]).await;
    assert_eq!(
        collision.error_code,
        ErrorCode::InvalidTopicException as i32
    );
    assert!(
        collision.error_message.contains("collides"),
        "{}",
        collision.error_message
    );
    let dup = admin
        .create_topics(CreateTopicsRequest {
            topics: vec![
                NewTopic {
                    name: "twice".into(),
                    num_partitions: 1,
                    ..Default::default()
                },
                NewTopic {
                    name: "twice".into(),
                    num_partitions: 2,
                    ..Default::default()
                },
            ],
            validate_only: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        dup.results
            .iter()
            .all(|r| r.error_code == ErrorCode::InvalidRequest as i32)
    );
    let dry = admin
        .create_topics(CreateTopicsRequest {
            topics: vec![NewTopic {
                name: "dry".into(),
                num_partitions: 4,
                ..Default::default()
            }],
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (dry.results[0].error_code, dry.results[0].num_partitions),
        (0, 4)
    );
    let listed = admin
        .describe_topics(DescribeTopicsRequest { topics: vec![] })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["my.topic"], "only the one successful topic exists");
}

#[tokio::test]
async fn topic_configs_override_broker_defaults_and_are_described() {
    let (_zk, broker) = start().await;
    create_topic(
        &broker,
        "small-segments",
        1,
        &[("segment.bytes", "1024"), ("retention.ms", "-1")],
    )
    .await;
    let mut admin = broker.admin_client().unwrap();
    let described = admin
        .describe_topics(DescribeTopicsRequest {
            topics: vec!["small-segments".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let topic = &described.topics[0];
    assert_eq!(
        topic.configs.get("segment.bytes").map(String::as_str),
        Some("1024")
    );
    assert_eq!(topic.partitions.len(), 1);

    let mut client = broker.broker_client().unwrap();
    for i in 0..10 {
        produce_ok(
            &mut client,
            "small-segments",
            0,
            batch(&records(&format!("s{i}"), 10, i)),
        )
        .await;
    }
    let dir = broker.data_dir().join("small-segments-0");
    let segments = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count();
    assert!(
        segments >= 5,
        "segment.bytes=1024 should roll often; found {segments} segments in {}",
        dir.display()
    );
    assert_eq!(
        read_all(&mut client, "small-segments", 0, 0).await.len(),
        100,
        "reads cross segment boundaries"
    );
}

#[tokio::test]
async fn retention_by_size_deletes_old_segments_and_advances_the_log_start() {
    let (_zk, broker) = start_with(&[
        ("log.retention.check.interval.ms", "200"),
        ("log.segment.delete.delay.ms", "0"),
    ])
    .await;
    create_topic(
        &broker,
        "bounded",
        1,
        &[("segment.bytes", "2048"), ("retention.bytes", "4096")],
    )
    .await;
    let mut client = broker.broker_client().unwrap();
    for i in 0..40 {
        produce_ok(
            &mut client,
            "bounded",
            0,
            batch(&records(&format!("r{i}"), 5, i)),
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let earliest = loop {
        let earliest = list_offset(&mut client, "bounded", 0, -2).await.offset;
        if earliest > 0 || Instant::now() > deadline {
            break earliest;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(earliest > 0, "retention never deleted a segment");
    assert_eq!(
        latest(&mut client, "bounded", 0).await,
        200,
        "retention never touches the log end"
    );
    let remaining = read_all(&mut client, "bounded", 0, earliest).await;
    assert_eq!(remaining.first().map(|r| r.offset), Some(earliest));
    assert_eq!(remaining.last().map(|r| r.offset), Some(199));
    let below = fetch_raw(&mut client, "bounded", 0, 0).await;
    assert_eq!(
        below.error_code,
        ErrorCode::OffsetOutOfRange as i32,
        "deleted offsets are out of range"
    );
}

#[tokio::test]
async fn delete_removes_data_and_the_name_can_be_reused() {
    let (_zk, broker) = start().await;
    create_topic(&broker, "doomed", 2, &[]).await;
    let mut client = broker.broker_client().unwrap();
    produce_ok(&mut client, "doomed", 1, batch(&records("d", 3, 1))).await;
    let mut admin = broker.admin_client().unwrap();
    let deleted = admin
        .delete_topics(DeleteTopicsRequest {
            topics: vec!["doomed".into(), "never-existed".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.results[0].error_code,
        ErrorCode::None as i32,
        "{}",
        deleted.results[0].error_message
    );
    assert_eq!(
        deleted.results[1].error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );
    assert_eq!(
        produce_raw(&mut client, "doomed", 1, batch(&records("d", 1, 1)))
            .await
            .error_code,
        ErrorCode::UnknownTopicOrPartition as i32
    );

    // The partition directories disappear (renamed for deletion, then removed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let data = broker.data_dir();
    let remaining = || {
        std::fs::read_dir(&data)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("doomed-"))
            .count()
    };
    while remaining() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        remaining(),
        0,
        "partition data of a deleted topic is removed"
    );

    // Same name again: a new, empty topic.
    create_topic(&broker, "doomed", 2, &[]).await;
    assert_eq!(latest(&mut client, "doomed", 1).await, 0);
}
