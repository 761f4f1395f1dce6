//! Topic name rules (topics themselves live in ZooKeeper: `/brokers/topics/<t>` and
//! `/config/topics/<t>`).

pub mod name;

pub use name::{TopicNameError, names_collide, validate_topic_name};
