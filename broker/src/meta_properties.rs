//! `meta.properties` in each log directory: which broker and cluster the data belongs to.
//!
//! Format (Kafka's, version 0):
//! ```text
//! version=0
//! broker.id=1
//! cluster.id=Vw3v5QnGRWqSg6V1m4QpVg
//! ```
//! A directory whose file names another broker id or another cluster aborts start-up: serving
//! someone else's data as our own would silently corrupt both.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

/// File name inside each log directory.
pub const META_PROPERTIES: &str = "meta.properties";

/// The identity stored in a log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// The broker id the directory belongs to.
    pub broker_id: i32,
    /// The cluster id the directory belongs to.
    pub cluster_id: String,
}

/// Why the log directories' identities cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetaPropertiesError {
    /// Reading or writing a file failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file lacks a field or has a bad value.
    #[error("{path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory belongs to another broker.
    #[error(
        "{path} says broker.id={found} but this broker is broker.id={configured}; refusing to use another broker's data"
    )]
    BrokerIdMismatch {
        /// The file.
        path: PathBuf,
        /// The id in the file.
        found: i32,
        /// The configured id.
        configured: i32,
    },
    /// Two directories belong to different clusters.
    #[error("log directories belong to different clusters ({first} and {second}, in {path})")]
    ClusterIdMismatch {
        /// One cluster id.
        first: String,
        /// The other.
        second: String,
        /// The directory with the second.
        path: PathBuf,
    },
}

/// A new random cluster id: 16 random bytes, URL-safe base64 without padding (22 characters),
/// as Kafka generates them.
pub fn generate_cluster_id() -> String {
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads `meta.properties` from every directory and checks they agree with `broker_id` and
/// each other. Returns the cluster id they name, if any directory has the file.
pub fn stored_cluster_id(
    dirs: &[PathBuf],
    broker_id: i32,
) -> Result<Option<String>, MetaPropertiesError> {
    let mut cluster_id: Option<String> = None;
    for dir in dirs {
        if let Some(meta) = read(dir)? {
            let path = dir.join(META_PROPERTIES);
            if meta.broker_id != broker_id {
                return Err(MetaPropertiesError::BrokerIdMismatch {
                    path,
                    found: meta.broker_id,
                    configured: broker_id,
                });
            }
            match &cluster_id {
                Some(first) if *first != meta.cluster_id => {
                    return Err(MetaPropertiesError::ClusterIdMismatch {
                        first: first.clone(),
                        second: meta.cluster_id,
                        path,
                    });
                }
                _ => cluster_id = Some(meta.cluster_id),
            }
        }
    }
    Ok(cluster_id)
}

/// Writes `meta.properties` (this broker, `cluster_id`) into every directory that lacks it.
pub fn write_missing(
    dirs: &[PathBuf],
    broker_id: i32,
    cluster_id: &str,
) -> Result<(), MetaPropertiesError> {
    let meta = MetaProperties {
        broker_id,
        cluster_id: cluster_id.to_owned(),
    };
    for dir in dirs {
        if read(dir)?.is_none() {
            write(dir, &meta)?;
        }
    }
    Ok(())
}

/// Reads `meta.properties` from `dir`, if present.
pub fn read(dir: &Path) -> Result<Option<MetaProperties>, MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MetaPropertiesError::Io {
                action: "cannot read",
                path,
                source,
            });
        }
    };
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let malformed = |reason: &str| MetaPropertiesError::Malformed {
        path: path.clone(),
        reason: reason.to_owned(),
    };
    if fields.get("version") != Some(&"0") {
        return Err(malformed("version must be 0"));
    }
    let broker_id = fields
        .get("broker.id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("broker.id missing or not a number"))?;
    let cluster_id = fields
        .get("cluster.id")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| malformed("cluster.id missing"))?;
    Ok(Some(MetaProperties {
        broker_id,
        cluster_id: (*cluster_id).to_owned(),
    }))
}

/// Writes `meta.properties` into `dir` (tmp file, fsync, rename).
pub fn write(dir: &Path, meta: &MetaProperties) -> Result<(), MetaPropertiesError> {
    let path = dir.join(META_PROPERTIES);
    let tmp = dir.join("meta.properties.tmp");
    let text = format!(
        "#\n#{}\nversion=0\nbroker.id={}\ncluster.id={}\n",
        "Written by the Tributary broker; do not edit", meta.broker_id, meta.cluster_id
    );
    let io = |action, source| MetaPropertiesError::Io {
        action,
        path: path.clone(),
        source,
    };
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("cannot create", e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io("cannot write", e))?;
    file.sync_all().map_err(|e| io("cannot fsync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("cannot rename", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = generate_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(id, generate_cluster_id());
    }

    #[test]
    fn ensure_writes_then_checks() {
        // What start-up does with them (broker/src/run.rs), without ZooKeeper's say.
        fn ensure(dirs: &[PathBuf], broker_id: i32) -> Result<String, MetaPropertiesError> {
            let id = stored_cluster_id(dirs, broker_id)?.unwrap_or_else(generate_cluster_id);
            write_missing(dirs, broker_id, &id)?;
            Ok(id)
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dirs = vec![a.path().to_owned(), b.path().to_owned()];
        let id = ensure(&dirs, 1).unwrap();
        assert_eq!(ensure(&dirs, 1).unwrap(), id, "stable across restarts");
        assert_eq!(
            read(b.path()).unwrap().unwrap(),
            MetaProperties {
                broker_id: 1,
                cluster_id: id.clone()
            }
        );
        assert!(matches!(
            ensure(&dirs, 2),
            Err(MetaPropertiesError::BrokerIdMismatch {
                found: 1,
                configured: 2,
                ..
            })
        ));
        write(
            b.path(),
            &MetaProperties {
                broker_id: 1,
                cluster_id: "other".into(),
            },
        )
        .unwrap();
        assert!(matches!(
            ensure(&dirs, 1),
            Err(MetaPropertiesError::ClusterIdMismatch { .. })
        ));
        std::fs::write(b.path().join(META_PROPERTIES), "version=0\n").unwrap();
        assert!(matches!(
            ensure(&dirs, 1),
            Err(MetaPropertiesError::Malformed { .. })
        ));
    }
}
