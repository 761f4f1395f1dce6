//! Start-up and shutdown, in the order that keeps data safe:
//!
//! 1. open (and lock) the log directories, recovering logs after an unclean stop;
//! 2. check `meta.properties` (broker id, cluster id) and, with `zookeeper.connect`, agree on
//!    the cluster id with ZooKeeper's `/cluster/id` (a mismatch means the wrong cluster);
//! 3. bind the listener, register `/brokers/ids/<id>` (refused if another live broker has the
//!    id), run for controller, and serve until shutdown; partitions come online when the
//!    controller sends LeaderAndIsr;
//! 4. stop serving, close the ZooKeeper session (the registration disappears at once), stop
//!    background tasks, flush and checkpoint every log and write the clean-shutdown marker.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;

use tokio::net::TcpListener;
use tributary_controller::runtime::RuntimeConfig;

use crate::config::{BrokerConfig, ConfigError};
use crate::controller_candidate::{self, ControllerView};
use crate::group::GroupCoordinator;
use crate::log::{LogError, LogManager, TopicPartition};
use crate::meta_properties::{self, MetaPropertiesError};
use crate::metadata_cache::MetadataCache;
use crate::replica::ReplicaManager;
use crate::state::BrokerState;
use crate::topic_configs::TopicConfigs;
use crate::zk_session::{self, Identity, ZkPresence};
use tributary_zk_layout::BrokerId;

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
    /// `zookeeper.connect` is not set.
    #[error(
        "zookeeper.connect is not set: a broker needs ZooKeeper (for example zookeeper.connect=127.0.0.1:2181)"
    )]
    MissingZooKeeper,
    /// The listener could not be bound.
    #[error("cannot listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// ZooKeeper could not be reached or refused a step of start-up.
    #[error("ZooKeeper: {step}")]
    ZooKeeper {
        /// What was being done.
        step: &'static str,
        /// The error.
        #[source]
        source: tributary_controller::zk::ZkError,
    },
    /// The log directories belong to another cluster than the one in ZooKeeper.
    #[error(
        "the log directories belong to cluster {stored} (meta.properties) but ZooKeeper's /cluster/id is {zookeeper}; this broker is trying to join the wrong cluster"
    )]
    WrongCluster {
        /// The id in meta.properties.
        stored: String,
        /// The id in ZooKeeper.
        zookeeper: String,
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
    let stored_cluster_id = meta_properties::stored_cluster_id(&config.log_dirs, config.broker_id)?;
    let proposed = stored_cluster_id
        .clone()
        .unwrap_or_else(meta_properties::generate_cluster_id);
    let connect = config
        .zookeeper_connect
        .clone()
        .ok_or(BrokerError::MissingZooKeeper)?;
    let client = zk_session::connect(&config, &connect)
        .await
        .map_err(|source| BrokerError::ZooKeeper {
            step: "connecting",
            source,
        })?;
    let cluster_id = tributary_controller::zk::create_or_get_cluster_id(&client, &proposed)
        .await
        .map_err(|source| BrokerError::ZooKeeper {
            step: "reading /cluster/id",
            source,
        })?;
    if let Some(stored) = stored_cluster_id
        && stored != cluster_id
    {
        return Err(BrokerError::WrongCluster {
            stored,
            zookeeper: cluster_id,
        });
    }
    meta_properties::write_missing(&config.log_dirs, config.broker_id, &cluster_id)?;

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

    let identity = Identity {
        broker_id: BrokerId(config.broker_id),
        host: config.listener.advertised_host.clone(),
        port: advertised_port,
        rack: config.rack.clone(),
    };
    let presence = ZkPresence::register(client, connect, config.clone(), identity)
        .await
        .map_err(|source| BrokerError::ZooKeeper {
            step: "registering /brokers/ids",
            source,
        })?;

    let (controller_view, controller_view_rx) =
        tokio::sync::watch::channel(ControllerView::UNKNOWN);
    let replicas = ReplicaManager::new(logs.clone());
    // Subscribed before serving, so the coordinator sees every LeaderAndIsr.
    let role_events = replicas.subscribe_roles();
    let state = Arc::new(BrokerState {
        cluster_id,
        advertised_host: config.listener.advertised_host.clone(),
        advertised_port,
        fetchers: crate::replica::FetcherManager::new(
            tributary_zk_layout::BrokerId(config.broker_id),
            config.replica_fetch,
        ),
        replicas,
        metadata: MetadataCache::new(),
        topic_configs: TopicConfigs::new(),
        zk: presence.sessions(),
        broker_epoch: presence.broker_epoch_cell(),
        controller: controller_view_rx,
        producer_ids: crate::producer_ids::ProducerIdManager::new(BrokerId(config.broker_id)),
        groups: GroupCoordinator::new(config.groups.clone()),
        config,
    });

    let (stop_candidate, candidate_stopped) = tokio::sync::watch::channel(false);
    let runtime_config = RuntimeConfig {
        me: BrokerId(state.config.broker_id),
        unclean_leader_election: state.config.unclean_leader_election_enable,
        auto_leader_rebalance: state.config.auto_leader_rebalance_enable,
        rebalance_interval: Duration::from_secs(
            state.config.leader_imbalance_check_interval_seconds,
        ),
        imbalance_percentage: state.config.leader_imbalance_per_broker_percentage,
    };
    let candidate = tokio::spawn(controller_candidate::run(
        BrokerId(state.config.broker_id),
        runtime_config,
        presence.sessions(),
        controller_view,
        candidate_stopped,
    ));

    let (stop_config_watcher, config_watcher_stopped) = tokio::sync::watch::channel(false);
    let config_watcher = tokio::spawn(crate::topic_config_sync::run(
        state.clone(),
        config_watcher_stopped,
    ));

    // Replication, leader side: one task writes ISR changes to ZooKeeper; another shrinks
    // ISRs every replica.lag.time.max.ms / 2 (Kafka's period).
    let (stop_replication, replication_stopped) = tokio::sync::watch::channel(false);
    let isr_writer = tokio::spawn(crate::replica::isr_writer::run(
        state
            .replicas
            .take_isr_changes()
            .expect("the ISR change receiver is taken once"),
        presence.sessions(),
        replication_stopped.clone(),
    ));
    let isr_shrinker = tokio::spawn(shrink_isrs(state.clone(), replication_stopped.clone()));
    let group_coordinator = tokio::spawn(crate::group::run(
        state.clone(),
        role_events,
        replication_stopped,
    ));

    let (stop_background, background_shutdown) = tokio::sync::watch::channel(false);
    let hw_state = state.clone();
    let background = logs.spawn_background(
        state.config.log_retention_check_interval_ms,
        state.config.log_flush_offset_checkpoint_interval_ms,
        Arc::new(move |tp: &TopicPartition| hw_state.replicas.high_watermark(tp)),
        background_shutdown.clone(),
    );
    let cleaner_state = state.clone();
    let cleaner = logs.spawn_cleaner(
        state.config.cleaner,
        Arc::new(move |tp: &TopicPartition| cleaner_state.replicas.high_watermark(tp)),
        background_shutdown,
    );

    tracing::info!(
        broker_id = state.config.broker_id,
        cluster_id = %state.cluster_id,
        address = %bound,
        "broker started"
    );
    on_ready(bound);
    // Keep serving during the controlled shutdown: the controller's LeaderAndIsr requests
    // (this broker becoming follower) arrive over the same listener.
    let shutdown_state = state.clone();
    let shutdown = async move {
        shutdown.await;
        crate::controlled_shutdown::run(&shutdown_state).await;
    };
    let served = crate::server::serve(state.clone(), listener, shutdown).await;

    tracing::info!("shutting down");
    state.fetchers.shutdown().await;
    let _ = stop_replication.send(true);
    let _ = isr_writer.await;
    let _ = isr_shrinker.await;
    let _ = group_coordinator.await;
    let _ = stop_candidate.send(true);
    let _ = candidate.await;
    let _ = stop_config_watcher.send(true);
    let _ = config_watcher.await;
    presence.close().await;
    let _ = stop_background.send(true);
    for task in background.into_iter().chain(cleaner) {
        let _ = task.await;
    }
    let hw_state = state.clone();
    let closed = tokio::task::spawn_blocking(move || {
        logs.shutdown(&move |tp: &TopicPartition| hw_state.replicas.high_watermark(tp))
    })
    .await
    .unwrap_or_else(|e| panic!("log shutdown task panicked: {e}"));
    served.map_err(BrokerError::Serve)?;
    closed?;
    tracing::info!("broker stopped cleanly");
    Ok(())
}

/// The ISR shrink task: every `replica.lag.time.max.ms / 2`, each led partition drops the
/// followers that have not caught up for longer than `replica.lag.time.max.ms`.
async fn shrink_isrs(state: Arc<BrokerState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let max_lag_ms = state.config.replica_lag_time_max_ms;
    let mut ticks = tokio::time::interval(Duration::from_millis((max_lag_ms / 2).max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        state.replicas.shrink_isrs(
            crate::state::now_ms(),
            i64::try_from(max_lag_ms).unwrap_or(i64::MAX),
        );
    }
}
