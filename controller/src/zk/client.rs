//! [`ZkClient`]: one ZooKeeper session, with typed errors and the start-up path creation.

use std::time::Duration;

use tributary_zk_layout::payloads::Payload;
use tributary_zk_layout::{ZkVersion, paths};
use zookeeper_client as zk;

use super::error::ZkError;

/// Open ACL (world:anyone:cdrwa), as Kafka without `zookeeper.set.acl`.
pub(crate) const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
pub(crate) const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
pub(crate) const PERSISTENT_SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());

/// The parts of a znode's `Stat` Tributary uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZnodeStat {
    /// zxid of the create; for `/brokers/ids/<id>` this is the broker epoch.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Data version, the optimistic-concurrency token of conditional writes.
    pub version: ZkVersion,
    /// Session id owning an ephemeral node; 0 for persistent nodes.
    pub ephemeral_owner: i64,
    pub num_children: i32,
}

impl From<zk::Stat> for ZnodeStat {
    fn from(stat: zk::Stat) -> Self {
        Self {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
            version: ZkVersion(stat.version),
            ephemeral_owner: stat.ephemeral_owner,
            num_children: stat.num_children,
        }
    }
}

/// One ZooKeeper session. Cheap to clone; clones share the session, and the session ends when
/// the last clone is dropped (or [`close`](Self::close)d).
///
/// Paths are relative to the chroot of `zookeeper.connect` (`host:port,host2:port/chroot`);
/// the underlying client applies it.
#[derive(Clone)]
pub struct ZkClient {
    inner: zk::Client,
}

impl std::fmt::Debug for ZkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkClient")
            .field("session_id", &self.session_id())
            .field("chroot", &self.chroot())
            .field("state", &self.inner.state())
            .finish()
    }
}

impl ZkClient {
    /// Connects with `zookeeper.connect` (`"h1:2181,h2:2181/tributary"`) and the requested
    /// session timeout (the server clamps it to its min/max; see
    /// [`session_timeout`](Self::session_timeout)).
    ///
    /// The chroot does not have to exist yet: [`ensure_persistent_paths`](Self::ensure_persistent_paths)
    /// creates it. Fails eagerly when no server is reachable instead of waiting out the
    /// session timeout.
    pub async fn connect(connect: &str, session_timeout: Duration) -> Result<Self, ZkError> {
        let inner = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_fail_eagerly()
            .connect(connect)
            .await
            .map_err(|source| match source {
                zk::Error::BadArguments(_) => ZkError::InvalidConnectString {
                    connect: connect.to_owned(),
                    source,
                },
                source => ZkError::Connect {
                    connect: connect.to_owned(),
                    source,
                },
            })?;
        Ok(Self { inner })
    }

    /// The session id, as in a znode's `ephemeralOwner`.
    pub fn session_id(&self) -> i64 {
        self.inner.session_id().0
    }

    /// The session timeout the server granted.
    pub fn session_timeout(&self) -> Duration {
        self.inner.session_timeout()
    }

    /// The chroot (`/` when none).
    pub fn chroot(&self) -> &str {
        self.inner.path()
    }

    /// The current session state.
    pub fn session_state(&self) -> zk::SessionState {
        self.inner.state()
    }

    /// A watcher of session state changes: `Disconnected` means "may have lost ownership of
    /// ephemerals" (the server may already have expired the session, ~2.5 s before the client
    /// notices); `Expired`, `Closed` and `AuthFailed` are terminal, after which `changed()`
    /// never returns again.
    pub fn session_state_watcher(&self) -> zk::StateWatcher {
        self.inner.state_watcher()
    }

    /// The underlying client, for watches this layer does not wrap.
    pub fn raw(&self) -> &zk::Client {
        &self.inner
    }

    /// Ends the session so that its ephemerals vanish at once (a few ms) instead of after the
    /// session timeout, as a crash would.
    ///
    /// The recipe measured in reference/zookeeper-from-rust.md §2: drop the client, then wait
    /// for the state watcher to report `Closed` before the runtime shuts down; returning from
    /// `main` right after the drop races the background task that sends CloseSession. Only the
    /// last clone closes the session, so drop the others first. Returns whether `Closed` was
    /// seen within `timeout` (false if other clones keep the session open).
    pub async fn close(self, timeout: Duration) -> bool {
        let mut watcher = self.inner.state_watcher();
        if watcher.peek_state().is_terminated() {
            return true;
        }
        drop(self);
        tokio::time::timeout(timeout, async {
            while !watcher.changed().await.is_terminated() {}
        })
        .await
        .is_ok()
    }

    /// Creates the chroot if missing, then every path in [`paths::PERSISTENT_PATHS`] (and
    /// their parents), empty. Idempotent; a concurrent creator is fine.
    pub async fn ensure_persistent_paths(&self) -> Result<(), ZkError> {
        self.ensure_chroot().await?;
        for path in paths::PERSISTENT_PATHS {
            self.ensure_path(path).await?;
        }
        Ok(())
    }

    /// `mkdir -p`: creates `path` and its missing ancestors, empty and persistent. Not atomic;
    /// `NodeExists` from a concurrent creator counts as success.
    pub async fn ensure_path(&self, path: &str) -> Result<(), ZkError> {
        self.inner
            .mkdir(path, &PERSISTENT)
            .await
            .map_err(|err| ZkError::from_zk(path, err))
    }

    /// Creates the chroot node itself (through a chroot-less view of the same session): the
    /// server does not check that a client's chroot exists, and every create under a missing
    /// chroot fails with NoNode.
    async fn ensure_chroot(&self) -> Result<(), ZkError> {
        let chroot = self.chroot().to_owned();
        if chroot == "/" {
            return Ok(());
        }
        let root = match self.inner.clone().chroot("/") {
            Ok(root) => root,
            // "/" is always a valid chroot; keep the error typed rather than panic.
            Err(_) => {
                return Err(ZkError::Unexpected {
                    path: chroot,
                    source: zk::Error::BadArguments(&"cannot view the root of the session"),
                });
            }
        };
        root.mkdir(&chroot, &PERSISTENT)
            .await
            .map_err(|err| ZkError::from_zk(&chroot, err))
    }

    /// Data and stat of `path`.
    pub async fn get(&self, path: &str) -> Result<(Vec<u8>, ZnodeStat), ZkError> {
        let (data, stat) = self
            .inner
            .get_data(path)
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        Ok((data, stat.into()))
    }

    /// Like [`get`](Self::get), `None` when the node does not exist.
    pub async fn get_if_exists(&self, path: &str) -> Result<Option<(Vec<u8>, ZnodeStat)>, ZkError> {
        match self.get(path).await {
            Ok(found) => Ok(Some(found)),
            Err(ZkError::NoNode { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads and decodes a JSON payload; a decode failure names the path.
    pub async fn get_payload<T: Payload>(&self, path: &str) -> Result<(T, ZnodeStat), ZkError> {
        let (data, stat) = self.get(path).await?;
        let value = T::decode(&data).map_err(|source| ZkError::Payload {
            path: path.to_owned(),
            source,
        })?;
        Ok((value, stat))
    }

    /// Like [`get_payload`](Self::get_payload), `None` when the node does not exist.
    pub async fn get_payload_if_exists<T: Payload>(
        &self,
        path: &str,
    ) -> Result<Option<(T, ZnodeStat)>, ZkError> {
        match self.get_payload(path).await {
            Ok(found) => Ok(Some(found)),
            Err(ZkError::NoNode { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The stat of `path`, `None` when it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<ZnodeStat>, ZkError> {
        let stat = self
            .inner
            .check_stat(path)
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        Ok(stat.map(ZnodeStat::from))
    }

    /// The child names of `path` (not full paths), sorted.
    pub async fn children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        let mut children = self
            .inner
            .list_children(path)
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        children.sort();
        Ok(children)
    }

    /// Creates a persistent znode (its parent must exist).
    pub async fn create_persistent(&self, path: &str, data: &[u8]) -> Result<ZnodeStat, ZkError> {
        let (stat, _) = self
            .inner
            .create(path, data, &PERSISTENT)
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        Ok(stat.into())
    }

    /// Creates an ephemeral znode, owned by this session.
    pub async fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<ZnodeStat, ZkError> {
        let (stat, _) = self
            .inner
            .create(path, data, &EPHEMERAL)
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        Ok(stat.into())
    }

    /// Creates `<prefix><10-digit sequence>` and returns its full path
    /// (`/isr_change_notification/isr_change_0000000042`).
    pub async fn create_sequential(&self, prefix: &str, data: &[u8]) -> Result<String, ZkError> {
        let (_, sequence) = self
            .inner
            .create(prefix, data, &PERSISTENT_SEQUENTIAL)
            .await
            .map_err(|err| ZkError::from_zk(prefix, err))?;
        Ok(format!("{prefix}{sequence}"))
    }

    /// Sets the data, only if the version is `expected` (when given). Returns the new stat.
    pub async fn set(
        &self,
        path: &str,
        data: &[u8],
        expected: Option<ZkVersion>,
    ) -> Result<ZnodeStat, ZkError> {
        let stat = self
            .inner
            .set_data(path, data, expected.map(|v| v.0))
            .await
            .map_err(|err| ZkError::from_zk(path, err))?;
        Ok(stat.into())
    }

    /// Deletes the node, only if the version is `expected` (when given).
    pub async fn delete(&self, path: &str, expected: Option<ZkVersion>) -> Result<(), ZkError> {
        self.inner
            .delete(path, expected.map(|v| v.0))
            .await
            .map_err(|err| ZkError::from_zk(path, err))
    }
}
