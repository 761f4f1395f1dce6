//! The controller loop: the one task that owns the [`ClusterModel`] while this broker is the
//! controller. Inputs (watch signals, broker responses, RPC requests, the rebalance timer) are
//! queued; the loop takes one at a time, reads what it needs from ZooKeeper, asks the pure
//! handler for a decision, and applies it: fenced writes first, then requests to brokers, then
//! the reply.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tributary_zk_layout::paths;

use super::apply::apply_writes;
use super::channels::BrokerChannels;
use super::handle::ControllerRequest;
use super::load;
use super::watches::{self, Dirty, WatchSignal};
use super::{Exit, RuntimeConfig};
use crate::cluster::{ClusterModel, TopicPartition};
use crate::decision::{LastReplicaNote, Reply};
use crate::event::Event;
use crate::handlers::handle;
use crate::model::broker_list;
use crate::zk::{FencedWriter, ZkError};

/// Every part of the tree, re-read after a reconnection.
const ALL_DIRTY: [Dirty; 5] = [
    Dirty::Brokers,
    Dirty::Topics,
    Dirty::Deletions,
    Dirty::IsrNotifications,
    Dirty::PreferredElection,
];

/// Aborts the watch tasks when the loop ends, however it ends.
struct WatchTasks(Vec<JoinHandle<()>>);

impl Drop for WatchTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The loop's state besides the model.
struct Controller {
    writer: FencedWriter,
    model: ClusterModel,
    channels: BrokerChannels,
    /// Events produced by the loop itself (re-read states after a lost write race).
    pending: VecDeque<Event>,
}

/// Runs the controller until `stop`, the end of the session, or a failed write.
pub(crate) async fn run(
    writer: FencedWriter,
    config: RuntimeConfig,
    mut requests: mpsc::Receiver<ControllerRequest>,
    mut stop: watch::Receiver<bool>,
) -> Exit {
    let client = writer.client().clone();
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    // Watch before loading, so no change between the load and the watch is missed.
    let mut _watch_tasks = match watches::subscribe(&client, signal_tx.clone()).await {
        Ok(tasks) => WatchTasks(tasks),
        Err(error) => return Exit::Failed(error),
    };
    let mut empty = ClusterModel::new(writer.epoch());
    empty.unclean_default = config.unclean_leader_election;
    let model = match load::load_model(&client, empty).await {
        Ok(model) => model,
        Err(error) => return Exit::Failed(error),
    };
    tracing::info!(
        controller_epoch = writer.epoch().0,
        brokers = model.live_brokers.len(),
        topics = model.topics.len(),
        partitions = model.partition_states.len(),
        "controller loaded the cluster from ZooKeeper"
    );
    let (feedback_tx, mut feedback) = mpsc::unbounded_channel();
    let channels = BrokerChannels::new(config.me, writer.epoch(), feedback_tx);
    let mut controller = Controller {
        writer,
        model,
        channels,
        pending: VecDeque::from([Event::Startup]),
    };
    // Work queued while there was no controller.
    let mut dirty: BTreeSet<Dirty> = [
        Dirty::Deletions,
        Dirty::IsrNotifications,
        Dirty::PreferredElection,
    ]
    .into();
    let mut rebalance = tokio::time::interval_at(
        tokio::time::Instant::now() + config.rebalance_interval,
        config.rebalance_interval,
    );
    rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        if let Err(error) = controller.drain(&mut dirty).await {
            return Exit::Failed(error);
        }
        tokio::select! {
            biased;
            _ = stop.changed() => return Exit::Stopped,
            signal = signals.recv() => {
                let Some(signal) = signal else { return Exit::SessionEnded };
                let mut next = Some(signal);
                let mut reconnected = false;
                // Coalesce whatever else is already queued.
                while let Some(signal) = next {
                    match signal {
                        WatchSignal::Changed(part) => { dirty.insert(part); }
                        WatchSignal::Reconnected => {
                            reconnected = true;
                            dirty.extend(ALL_DIRTY);
                        }
                        WatchSignal::SessionEnded(state) => {
                            tracing::warn!(?state, "ZooKeeper session ended; the controller stops");
                            return Exit::SessionEnded;
                        }
                    }
                    next = signals.try_recv().ok();
                }
                if reconnected {
                    // Persistent watches were seen to deliver nothing more after the client
                    // re-established its connection: add them again (the old ones are removed
                    // as their tasks end), then re-read everything.
                    tracing::info!("ZooKeeper connection restored; watching again and re-reading the cluster");
                    _watch_tasks = match watches::subscribe(&client, signal_tx.clone()).await {
                        Ok(tasks) => WatchTasks(tasks),
                        Err(error) => return Exit::Failed(error),
                    };
                }
            }
            Some(event) = feedback.recv() => controller.pending.push_back(event),
            Some(request) = requests.recv() => {
                if let Err(error) = controller.serve(request).await {
                    return Exit::Failed(error);
                }
            }
            _ = rebalance.tick(), if config.auto_leader_rebalance => {
                controller.pending.push_back(Event::AutoRebalanceTick {
                    imbalance_percentage: config.imbalance_percentage,
                });
            }
        }
    }
}

impl Controller {
    /// Handles queued events, then re-reads and handles each dirty part of the tree (in a fixed
    /// order: brokers before topics, so new partitions are placed on current brokers).
    async fn drain(&mut self, dirty: &mut BTreeSet<Dirty>) -> Result<(), ZkError> {
        // A ZooKeeper request must not hang the controller forever (one sent while the client
        // re-established its connection was seen never to complete): a step that takes longer
        // than twice the session timeout ends the loop, and the candidate resigns and reloads.
        let limit = self.writer.client().session_timeout() * 2;
        loop {
            if let Some(event) = self.pending.pop_front() {
                let name = event_name(&event);
                within(limit, name, self.handle_and_apply(event)).await?;
                continue;
            }
            let Some(part) = dirty.pop_first() else {
                return Ok(());
            };
            within(limit, "re-read", self.reread(part)).await?;
        }
    }

    /// Reads one part of the tree and handles what it says.
    async fn reread(&mut self, part: Dirty) -> Result<(), ZkError> {
        let client = self.writer.client().clone();
        match part {
            Dirty::Brokers => {
                let live = load::read_brokers(&client).await?;
                self.model.unclean_overrides =
                    load::read_unclean_overrides(&client, self.model.topics.keys()).await?;
                self.handle_and_apply(Event::BrokersChanged { live })
                    .await?;
            }
            Dirty::Topics => {
                let topics = load::read_topics(&client).await?;
                self.model.unclean_overrides =
                    load::read_unclean_overrides(&client, topics.keys()).await?;
                self.handle_and_apply(Event::TopicsChanged { topics })
                    .await?;
            }
            Dirty::Deletions => {
                let topics = load::read_deletions(&client).await?;
                if !topics.is_empty() {
                    self.handle_and_apply(Event::TopicDeletionRequested { topics })
                        .await?;
                }
            }
            Dirty::IsrNotifications => {
                let (names, partitions) = load::read_isr_notifications(&client).await?;
                if names.is_empty() {
                    return Ok(());
                }
                let known: Vec<TopicPartition> = partitions
                    .into_iter()
                    .filter(|tp| !self.model.replicas(tp).is_empty())
                    .collect();
                let states = load::read_partition_states(&client, &known).await?;
                if !states.is_empty() {
                    self.handle_and_apply(Event::IsrChanged { partitions: states })
                        .await?;
                }
                self.writer
                    .delete_children(paths::isr_change_notification(), &names)
                    .await?;
            }
            Dirty::PreferredElection => {
                if let Some(partitions) = load::read_preferred_election(&client).await? {
                    self.handle_and_apply(Event::PreferredElection {
                        partitions,
                        from_admin_znode: true,
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Answers an RPC forwarded to the controller.
    async fn serve(&mut self, request: ControllerRequest) -> Result<(), ZkError> {
        match request {
            ControllerRequest::ControlledShutdown {
                broker,
                broker_epoch,
                reply,
            } => {
                let outcome = self
                    .handle_and_apply(Event::ControlledShutdown {
                        broker,
                        broker_epoch,
                    })
                    .await?;
                if let Some(Reply::ControlledShutdown(result)) = outcome {
                    let _ = reply.send(result);
                }
            }
            ControllerRequest::ElectPreferred { partitions, reply } => {
                let partitions = if partitions.is_empty() {
                    self.model.active_partitions().into_iter().collect()
                } else {
                    partitions
                };
                let outcome = self
                    .handle_and_apply(Event::PreferredElection {
                        partitions,
                        from_admin_znode: false,
                    })
                    .await?;
                let results = match outcome {
                    Some(Reply::PreferredElection(results)) => results,
                    _ => BTreeMap::new(),
                };
                let _ = reply.send(results);
            }
        }
        Ok(())
    }

    /// Handles one event and applies its decision; returns the decision's reply.
    async fn handle_and_apply(&mut self, event: Event) -> Result<Option<Reply>, ZkError> {
        let name = event_name(&event);
        let mut decision = handle(&mut self.model, event);
        if decision.is_empty() {
            return Ok(decision.reply);
        }
        tracing::debug!(
            event = name,
            writes = decision.zk_writes.len(),
            requests = decision.requests.len(),
            "controller decision"
        );
        let lost = apply_writes(&self.writer, &mut self.model, &decision.zk_writes).await?;
        if !lost.is_empty() {
            tracing::info!(partitions = ?lost, "partition state changed under the controller; re-reading it");
            decision.drop_partitions(&lost);
        }
        for tp in &decision.unclean_elections {
            if let Some(state) = self.model.partition_states.get(tp) {
                tracing::warn!(
                    topic_partition = %tp,
                    leader = %state.leader_and_isr.leader,
                    leader_epoch = %state.leader_and_isr.leader_epoch,
                    "unclean leader election: an out-of-sync replica now leads; records the previous in-sync replicas acknowledged may be lost"
                );
            }
        }
        log_last_replica_notes(&decision.last_replica_notes);
        self.channels.sync(&self.model.live_brokers);
        for request in decision.requests {
            self.channels.send(request);
        }
        if !lost.is_empty() {
            let lost: Vec<TopicPartition> = lost.into_iter().collect();
            let partitions = load::read_partition_states(self.writer.client(), &lost).await?;
            self.pending.push_back(Event::IsrChanged { partitions });
        }
        Ok(decision.reply)
    }
}

/// Logs what happened to leaderless partitions whose last in-sync replica needed verification.
fn log_last_replica_notes(notes: &[LastReplicaNote]) {
    for note in notes {
        match note {
            LastReplicaNote::Waiting {
                partition,
                candidate,
                missing,
            } => tracing::warn!(
                topic_partition = %partition,
                last_in_sync_replica = %candidate,
                missing = %broker_list(missing),
                "partition stays offline: its last in-sync replica was recovered after an unclean shutdown and may have lost acknowledged records; waiting for the missing replicas to compare logs (or allow an unclean election)"
            ),
            LastReplicaNote::Elected {
                partition,
                comparison,
                leader,
            } => tracing::warn!(
                topic_partition = %partition,
                last_in_sync_replica = %comparison.candidate,
                %leader,
                logs = ?comparison.logs,
                "leader elected after comparing every replica's log: the last in-sync replica was recovered after an unclean shutdown"
            ),
        }
    }
}

/// Runs one controller step with a time limit; running out is a retriable ZooKeeper error.
async fn within<T>(
    limit: Duration,
    step: &'static str,
    work: impl std::future::Future<Output = Result<T, ZkError>>,
) -> Result<T, ZkError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(step, ?limit, "a controller step did not finish in time");
            Err(ZkError::Retriable {
                path: "/".into(),
                source: zookeeper_client::Error::ConnectionLoss,
            })
        }
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Startup => "startup",
        Event::BrokersChanged { .. } => "brokers changed",
        Event::TopicsChanged { .. } => "topics changed",
        Event::TopicDeletionRequested { .. } => "topic deletion requested",
        Event::ReplicaDeletionDone { .. } => "replica deletion done",
        Event::IsrChanged { .. } => "ISR changed",
        Event::PreferredElection { .. } => "preferred election",
        Event::AutoRebalanceTick { .. } => "auto rebalance",
        Event::ControlledShutdown { .. } => "controlled shutdown",
        Event::ReplicaLogsDescribed { .. } => "replica logs described",
    }
}
