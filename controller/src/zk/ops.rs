//! Multi-op transactions: [`ZkOp`]s applied all-or-nothing, with failures mapped to the path
//! of the op that failed.

use tributary_zk_layout::ZkVersion;
use zookeeper_client as zk;

use super::client::{EPHEMERAL, PERSISTENT, PERSISTENT_SEQUENTIAL, ZkClient, ZnodeStat};
use super::error::ZkError;

/// How a [`ZkOp::Create`] creates its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    Persistent,
    /// The path is a prefix; ZooKeeper appends a 10-digit sequence number.
    PersistentSequential,
    Ephemeral,
}

/// One operation of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZkOp {
    /// Fails the multi unless `path` is at `version`.
    Check { path: String, version: ZkVersion },
    Create {
        path: String,
        data: Vec<u8>,
        kind: CreateKind,
    },
    /// `expected: None` writes whatever the version.
    SetData {
        path: String,
        data: Vec<u8>,
        expected: Option<ZkVersion>,
    },
    /// `expected: None` deletes whatever the version.
    Delete {
        path: String,
        expected: Option<ZkVersion>,
    },
}

impl ZkOp {
    pub fn create(path: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self::Create {
            path: path.into(),
            data: data.into(),
            kind: CreateKind::Persistent,
        }
    }

    pub fn set(
        path: impl Into<String>,
        data: impl Into<Vec<u8>>,
        expected: Option<ZkVersion>,
    ) -> Self {
        Self::SetData {
            path: path.into(),
            data: data.into(),
            expected,
        }
    }

    pub fn delete(path: impl Into<String>, expected: Option<ZkVersion>) -> Self {
        Self::Delete {
            path: path.into(),
            expected,
        }
    }

    /// The znode this op touches.
    pub fn path(&self) -> &str {
        match self {
            Self::Check { path, .. }
            | Self::Create { path, .. }
            | Self::SetData { path, .. }
            | Self::Delete { path, .. } => path,
        }
    }
}

/// The result of one successful op, in op order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Checked,
    /// The created path (with the sequence suffix for sequential creates). ZooKeeper does not
    /// return a usable Stat for a create inside a multi (ZOOKEEPER-4026), so there is none.
    Created {
        path: String,
    },
    Set {
        stat: ZnodeStat,
    },
    Deleted,
}

/// Why a multi failed.
#[derive(Debug)]
pub(crate) enum MultiFailure {
    /// Op `index` failed; nothing was applied.
    Op { index: usize, source: zk::Error },
    /// The request itself failed (connection loss, expiry): it may or may not have applied.
    Request(zk::Error),
}

impl ZkClient {
    /// Applies `ops` atomically. A failed op becomes the [`ZkError`] of its path (e.g.
    /// `BadVersion { path }`); nothing is applied then.
    pub async fn multi(&self, ops: &[ZkOp]) -> Result<Vec<OpResult>, ZkError> {
        self.multi_raw(ops).await.map_err(|failure| match failure {
            MultiFailure::Op { index, source } => {
                let path = ops.get(index).map_or("<multi>", ZkOp::path);
                ZkError::from_zk(path, source)
            }
            MultiFailure::Request(source) => {
                let path = ops.first().map_or("<multi>", ZkOp::path);
                ZkError::from_zk(path, source)
            }
        })
    }

    pub(crate) async fn multi_raw(&self, ops: &[ZkOp]) -> Result<Vec<OpResult>, MultiFailure> {
        let mut writer = self.raw().new_multi_writer();
        for (index, op) in ops.iter().enumerate() {
            let added = match op {
                ZkOp::Check { path, version } => writer.add_check_version(path, version.0),
                ZkOp::Create { path, data, kind } => {
                    let options = match kind {
                        CreateKind::Persistent => &PERSISTENT,
                        CreateKind::PersistentSequential => &PERSISTENT_SEQUENTIAL,
                        CreateKind::Ephemeral => &EPHEMERAL,
                    };
                    writer.add_create(path, data, options)
                }
                ZkOp::SetData {
                    path,
                    data,
                    expected,
                } => writer.add_set_data(path, data, expected.map(|v| v.0)),
                ZkOp::Delete { path, expected } => writer.add_delete(path, expected.map(|v| v.0)),
            };
            // Client-side validation (bad path, deleting "/") fails before anything is sent.
            added.map_err(|source| MultiFailure::Op { index, source })?;
        }
        let results = writer.commit().await.map_err(|err| match err {
            zk::MultiWriteError::OperationFailed { index, source } => {
                MultiFailure::Op { index, source }
            }
            zk::MultiWriteError::RequestFailed { source } => MultiFailure::Request(source),
        })?;
        Ok(results
            .into_iter()
            .map(|result| match result {
                zk::MultiWriteResult::Check => OpResult::Checked,
                zk::MultiWriteResult::Create { path, .. } => OpResult::Created { path },
                zk::MultiWriteResult::SetData { stat } => OpResult::Set { stat: stat.into() },
                zk::MultiWriteResult::Delete => OpResult::Deleted,
                // The enum is non_exhaustive; a future kind has no meaning to us.
                _ => OpResult::Checked,
            })
            .collect())
    }
}
