//! The one error type of the ZooKeeper access layer, with the path each failure concerns.

use tributary_zk_layout::{BrokerId, PayloadError, ZkVersion};
use zookeeper_client as zk;

/// A failed ZooKeeper operation, classified so that callers can decide: retry
/// ([`is_retriable`](Self::is_retriable)), resign ([`ControllerMoved`](Self::ControllerMoved)),
/// start a new session ([`SessionExpired`](Self::SessionExpired)), or give up.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The session could not be established at all.
    #[error("cannot connect to ZooKeeper at {connect}")]
    Connect {
        connect: String,
        #[source]
        source: zk::Error,
    },
    /// `zookeeper.connect` is malformed (bad chroot, no hosts).
    #[error("invalid zookeeper.connect {connect:?}")]
    InvalidConnectString {
        connect: String,
        #[source]
        source: zk::Error,
    },
    #[error("znode {path} does not exist")]
    NoNode { path: String },
    #[error("znode {path} already exists")]
    NodeExists { path: String },
    /// A conditional write found another zkVersion: someone else changed the znode.
    #[error("znode {path} has a different version than expected (changed concurrently)")]
    BadVersion { path: String },
    #[error("znode {path} still has children")]
    NotEmpty { path: String },
    /// The `/controller_epoch` check of a fenced write failed: a newer controller was elected.
    /// The caller must resign.
    #[error(
        "controller moved: /controller_epoch is no longer at zkVersion {expected_epoch_zk_version}"
    )]
    ControllerMoved {
        expected_epoch_zk_version: ZkVersion,
    },
    /// The session is gone for good: its ephemerals are deleted and its watches are dead. Only
    /// a new [`ZkClient`](super::ZkClient) (a new session) can continue.
    #[error("ZooKeeper session expired (while accessing {path})")]
    SessionExpired { path: String },
    /// The client was closed (all handles dropped or auth failed); nothing can be retried.
    #[error("ZooKeeper client is closed (while accessing {path})")]
    Closed { path: String },
    /// Connection loss or no answer in time: the request may or may not have been applied.
    /// Retry, and re-read to resolve a lost reply.
    #[error("ZooKeeper request on {path} did not complete (retriable)")]
    Retriable {
        path: String,
        #[source]
        source: zk::Error,
    },
    /// Registering `/brokers/ids/<id>` found an ephemeral owned by another session.
    #[error(
        "another live broker holds broker.id {id} (its /brokers/ids/{id} belongs to another session)"
    )]
    BrokerIdInUse { id: BrokerId },
    /// A znode holds data this code cannot decode.
    #[error("cannot decode znode {path}")]
    Payload {
        path: String,
        #[source]
        source: PayloadError,
    },
    /// Any other server or client error (no auth, invalid ACL, bad arguments, ...).
    #[error("ZooKeeper request on {path} failed")]
    Unexpected {
        path: String,
        #[source]
        source: zk::Error,
    },
}

impl ZkError {
    /// Classifies a client error for an operation on `path`.
    ///
    /// Besides `ConnectionLoss`, the crate reports a request that got no answer before the
    /// connection timeout as `Custom("no response from connection in ...ms")` (measured in
    /// reference/zookeeper-from-rust.md §2), so every non-semantic error is retriable.
    pub fn from_zk(path: &str, source: zk::Error) -> Self {
        let path = path.to_owned();
        match source {
            zk::Error::NoNode => Self::NoNode { path },
            zk::Error::NodeExists => Self::NodeExists { path },
            zk::Error::BadVersion => Self::BadVersion { path },
            zk::Error::NotEmpty => Self::NotEmpty { path },
            zk::Error::SessionExpired => Self::SessionExpired { path },
            zk::Error::ClientClosed | zk::Error::AuthFailed => Self::Closed { path },
            zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::NoHosts
            | zk::Error::Throttled
            | zk::Error::SessionMoved
            | zk::Error::NotReadOnly
            | zk::Error::Custom(_) => Self::Retriable { path, source },
            source => Self::Unexpected { path, source },
        }
    }

    /// Whether the same request may succeed if sent again on the same session.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Retriable { .. })
    }

    /// Whether the session is over (a new client is needed).
    pub fn is_session_lost(&self) -> bool {
        matches!(self, Self::SessionExpired { .. } | Self::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let cases = [
            (zk::Error::NoNode, "NoNode"),
            (zk::Error::NodeExists, "NodeExists"),
            (zk::Error::BadVersion, "BadVersion"),
            (zk::Error::NotEmpty, "NotEmpty"),
            (zk::Error::SessionExpired, "SessionExpired"),
            (zk::Error::ClientClosed, "Closed"),
            (zk::Error::ConnectionLoss, "Retriable"),
            (zk::Error::Timeout, "Retriable"),
            (zk::Error::NoAuth, "Unexpected"),
        ];
        for (source, expected) in cases {
            let err = ZkError::from_zk("/x", source);
            let name = format!("{err:?}");
            assert!(name.starts_with(expected), "{name} should be {expected}");
            assert!(err.to_string().contains("/x"), "{err}");
        }
        assert!(ZkError::from_zk("/x", zk::Error::ConnectionLoss).is_retriable());
        assert!(!ZkError::from_zk("/x", zk::Error::BadVersion).is_retriable());
        assert!(ZkError::from_zk("/x", zk::Error::SessionExpired).is_session_lost());
    }
}
