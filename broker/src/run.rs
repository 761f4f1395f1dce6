//! Start-up and shutdown, in the order that keeps data safe:
//!
//! 1. open (and lock) the log directories, recovering logs after an unclean stop;
//! 2. check `meta.properties` (broker id, cluster id);
//! 3. load the topic registry and host every partition;
//! 4. bind the listener and serve until shutdown;
//! 5. stop serving, stop background tasks, flush and checkpoint every log and write the
//!    clean-shutdown marker.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

use crate::config::{BrokerConfig, ConfigError};
use crate::log::{LogError, LogManager, TopicPartition};
use crate::meta_properties::{self, MetaPropertiesError};
use crate::replica::ReplicaManager;
use crate::state::BrokerState;
use crate::topics::{TopicStore, TopicStoreError};

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A log directory could not be created.
    #[error("cannot create log directory {path}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The storage engine failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// `meta.properties` disagrees with the configuration.
    #[error(transparent)]
    MetaProperties(#[from] MetaPropertiesError),
    /// The topic registry could not be read.
    #[error(transparent)]
    TopicStore(#[from] TopicStoreError),
    /// The listener could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// Runs a broker until `shutdown` completes, then shuts it down cleanly.
///
/// `on_ready` is called with the bound address once the broker accepts requests.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), BrokerError> {
    for key in &config.ignored_keys {
        tracing::warn!(key = %key, "ignoring Kafka configuration key that has no meaning for Tributary");
    }
    for dir in &config.log_dirs {
        std::fs::create_dir_all(dir).map_err(|source| BrokerError::CreateDir {
            path: dir.clone(),
            source,
        })?;
    }
    let logs = Arc::new(LogManager::open(
        &config.log_dirs,
        config.log_defaults.clone(),
    )?);
    let cluster_id = meta_properties::ensure(&config.log_dirs, config.broker_id)?;
    let topics = TopicStore::open(&config.log_dirs[0])?;

    let listener = TcpListener::bind(config.listener.bind)
        .await
        .map_err(|source| BrokerError::Bind {
            address: config.listener.bind,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| BrokerError::Bind {
        address: config.listener.bind,
        source,
    })?;
    let advertised_port = if config.listener.advertised_port == 0 {
        bound.port()
    } else {
        config.listener.advertised_port
    };

    let state = Arc::new(BrokerState {
        cluster_id,
        advertised_host: config.listener.advertised_host.clone(),
        advertised_port,
        replicas: ReplicaManager::new(logs.clone()),
        topics: Mutex::new(topics),
        config,
    });
    let hosted = state.host_stored_topics()?;

    let (stop_background, background_shutdown) = tokio::sync::watch::channel(false);
    let hw_state = state.clone();
    let background = logs.spawn_background(
        state.config.log_retention_check_interval_ms,
        state.config.log_flush_offset_checkpoint_interval_ms,
        Arc::new(move |tp: &TopicPartition| hw_state.replicas.high_watermark(tp)),
        background_shutdown,
    );

    tracing::info!(
        broker_id = state.config.broker_id,
        cluster_id = %state.cluster_id,
        address = %bound,
        partitions = hosted,
        "broker started"
    );
    on_ready(bound);
    let served = crate::server::serve(state.clone(), listener, shutdown).await;

    tracing::info!("shutting down");
    let _ = stop_background.send(true);
    for task in background {
        let _ = task.await;
    }
    let closed = tokio::task::spawn_blocking(move || logs.shutdown())
        .await
        .unwrap_or_else(|e| panic!("log shutdown task panicked: {e}"));
    served.map_err(BrokerError::Serve)?;
    closed?;
    tracing::info!("broker stopped cleanly");
    Ok(())
}
