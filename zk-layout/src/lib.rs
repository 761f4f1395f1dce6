//! The ZooKeeper znode tree and JSON payloads, exactly as classic Kafka writes them.
//!
//! Tributary does not use ZooKeeper yet (the foundation issue runs a single broker with local
//! topic metadata); the paths and payloads arrive with the ZooKeeper coordination issue.
