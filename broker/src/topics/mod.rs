//! Topics: name rules and (for this single-broker milestone) the local topic registry.

pub mod name;
pub mod store;

pub use name::{TopicNameError, names_collide, validate_topic_name};
pub use store::{TopicDefinition, TopicStore, TopicStoreError};
