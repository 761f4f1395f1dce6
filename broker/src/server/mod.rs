//! The gRPC services (`tributary.v1.Broker`, `tributary.v1.Admin`,
//! `tributary.v1.GroupCoordinator`, `tributary.v1.GroupConsumer`, `tributary.v1.Control`, plus the standard health and
//! reflection services) and the server that runs them.
//!
//! Handlers live one request family per file; this module only wires them to tonic.

pub mod admin;
mod control;
mod control_describe_logs;
mod control_forward;
#[cfg(test)]
pub(crate) mod control_tests;
pub mod errors;
mod fetch;
mod group_admin;
mod groups;
mod init_producer_id;
mod leadership;
mod list_offsets;
mod members;
mod metadata;
mod offset_for_leader_epoch;
mod produce;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use tributary_proto::v1::admin_server::{Admin, AdminServer};
use tributary_proto::v1::broker_server::{Broker, BrokerServer};
use tributary_proto::v1::control_server::{Control, ControlServer};
use tributary_proto::v1::group_consumer_server::{GroupConsumer, GroupConsumerServer};
use tributary_proto::v1::group_coordinator_server::{GroupCoordinator, GroupCoordinatorServer};
use tributary_proto::v1::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, ElectLeadersRequest, ElectLeadersResponse,
};
use tributary_proto::v1::{ConsumeClientMessage, ConsumeServerMessage};
use tributary_proto::v1::{
    ControlledShutdownRequest, ControlledShutdownResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeReplicaLogsRequest,
    DescribeReplicaLogsResponse, DescribeTopicsRequest, DescribeTopicsResponse,
    ElectPreferredLeadersRequest, ElectPreferredLeadersResponse, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, LeaderAndIsrRequest, LeaderAndIsrResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
    StopReplicaRequest, StopReplicaResponse, UpdateMetadataRequest, UpdateMetadataResponse,
};
use tributary_proto::v1::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse,
};
use tributary_proto::v1::{
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse,
};

pub use fetch::{DEFAULT_MAX_BYTES, DEFAULT_PARTITION_MAX_BYTES};

use crate::state::BrokerState;

/// Responses queued per stream before the handler waits for the client to read.
const STREAM_BUFFER: usize = 64;

/// The data-path service.
#[derive(Debug, Clone)]
pub struct BrokerService {
    state: Arc<BrokerState>,
}

/// The admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    state: Arc<BrokerState>,
}

/// The group coordinator service.
#[derive(Debug, Clone)]
pub struct GroupCoordinatorService {
    state: Arc<BrokerState>,
}

/// The control-plane service (controller ↔ brokers).
#[derive(Debug, Clone)]
pub struct ControlService {
    state: Arc<BrokerState>,
}

/// The streaming consumer for thin clients (see `crate::consume`).
#[derive(Debug, Clone)]
pub struct GroupConsumerService {
    state: Arc<BrokerState>,
}

#[tonic::async_trait]
impl GroupConsumer for GroupConsumerService {
    type ConsumeStreamStream = ResponseStream<ConsumeServerMessage>;

    async fn consume_stream(
        &self,
        request: Request<Streaming<ConsumeClientMessage>>,
    ) -> Result<Response<Self::ConsumeStreamStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(crate::consume::run(
            self.state.clone(),
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Runs `handle` for each request of `inbound` in order, sending one response per request.
/// A request that fails as a whole ends the stream with its status.
fn ordered_stream<Req, Resp, F, Fut>(mut inbound: Streaming<Req>, handle: F) -> ResponseStream<Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Fn(Req) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send,
{
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        while let Some(item) = inbound.next().await {
            let result = match item {
                Ok(request) => handle(request).await,
                // The client went away or sent a broken frame: nothing left to answer.
                Err(_) => break,
            };
            let failed = result.is_err();
            if tx.send(result).await.is_err() || failed {
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl Broker for BrokerService {
    async fn produce(
        &self,
        request: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        produce::produce(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    type ProduceStreamStream = ResponseStream<ProduceResponse>;

    async fn produce_stream(
        &self,
        request: Request<Streaming<ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        let state = self.state.clone();
        Ok(Response::new(ordered_stream(
            request.into_inner(),
            move |req| {
                let state = state.clone();
                async move { produce::produce(&state, req).await }
            },
        )))
    }

    async fn fetch(
        &self,
        request: Request<FetchRequest>,
    ) -> Result<Response<FetchResponse>, Status> {
        fetch::fetch(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    type FetchStreamStream = ResponseStream<FetchResponse>;

    async fn fetch_stream(
        &self,
        request: Request<Streaming<FetchRequest>>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let state = self.state.clone();
        Ok(Response::new(ordered_stream(
            request.into_inner(),
            move |req| {
                let state = state.clone();
                async move { fetch::fetch(&state, req).await }
            },
        )))
    }

    async fn list_offsets(
        &self,
        request: Request<ListOffsetsRequest>,
    ) -> Result<Response<ListOffsetsResponse>, Status> {
        list_offsets::list_offsets(&self.state, request.into_inner()).map(Response::new)
    }

    async fn metadata(
        &self,
        request: Request<MetadataRequest>,
    ) -> Result<Response<MetadataResponse>, Status> {
        metadata::metadata(&self.state, request.into_inner()).map(Response::new)
    }

    async fn offset_for_leader_epoch(
        &self,
        request: Request<OffsetForLeaderEpochRequest>,
    ) -> Result<Response<OffsetForLeaderEpochResponse>, Status> {
        offset_for_leader_epoch::offset_for_leader_epoch(&self.state, request.into_inner())
            .map(Response::new)
    }

    async fn init_producer_id(
        &self,
        request: Request<InitProducerIdRequest>,
    ) -> Result<Response<InitProducerIdResponse>, Status> {
        init_producer_id::init_producer_id(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_topics(
        &self,
        request: Request<CreateTopicsRequest>,
    ) -> Result<Response<CreateTopicsResponse>, Status> {
        admin::create_topics(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_topics(
        &self,
        request: Request<DeleteTopicsRequest>,
    ) -> Result<Response<DeleteTopicsResponse>, Status> {
        admin::delete_topics(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn describe_topics(
        &self,
        request: Request<DescribeTopicsRequest>,
    ) -> Result<Response<DescribeTopicsResponse>, Status> {
        admin::describe_topics(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_partitions(
        &self,
        request: Request<CreatePartitionsRequest>,
    ) -> Result<Response<CreatePartitionsResponse>, Status> {
        admin::create_partitions(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn describe_configs(
        &self,
        request: Request<DescribeConfigsRequest>,
    ) -> Result<Response<DescribeConfigsResponse>, Status> {
        admin::describe_configs(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn alter_configs(
        &self,
        request: Request<AlterConfigsRequest>,
    ) -> Result<Response<AlterConfigsResponse>, Status> {
        admin::alter_configs(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn elect_leaders(
        &self,
        request: Request<ElectLeadersRequest>,
    ) -> Result<Response<ElectLeadersResponse>, Status> {
        admin::elect_leaders(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl GroupCoordinator for GroupCoordinatorService {
    async fn find_coordinator(
        &self,
        request: Request<FindCoordinatorRequest>,
    ) -> Result<Response<FindCoordinatorResponse>, Status> {
        groups::find_coordinator(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn offset_commit(
        &self,
        request: Request<OffsetCommitRequest>,
    ) -> Result<Response<OffsetCommitResponse>, Status> {
        groups::offset_commit(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn offset_fetch(
        &self,
        request: Request<OffsetFetchRequest>,
    ) -> Result<Response<OffsetFetchResponse>, Status> {
        groups::offset_fetch(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn join_group(
        &self,
        request: Request<JoinGroupRequest>,
    ) -> Result<Response<JoinGroupResponse>, Status> {
        let client_host = members::client_host(&request);
        members::join_group(&self.state, request.into_inner(), client_host)
            .await
            .map(Response::new)
    }

    async fn sync_group(
        &self,
        request: Request<SyncGroupRequest>,
    ) -> Result<Response<SyncGroupResponse>, Status> {
        members::sync_group(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        Ok(Response::new(members::heartbeat(
            &self.state,
            request.into_inner(),
        )))
    }

    async fn leave_group(
        &self,
        request: Request<LeaveGroupRequest>,
    ) -> Result<Response<LeaveGroupResponse>, Status> {
        Ok(Response::new(members::leave_group(
            &self.state,
            request.into_inner(),
        )))
    }

    // Group administration (group_admin.rs).

    async fn list_groups(
        &self,
        request: Request<ListGroupsRequest>,
    ) -> Result<Response<ListGroupsResponse>, Status> {
        group_admin::list_groups(&self.state, request.into_inner()).map(Response::new)
    }

    async fn describe_groups(
        &self,
        request: Request<DescribeGroupsRequest>,
    ) -> Result<Response<DescribeGroupsResponse>, Status> {
        Ok(Response::new(group_admin::describe_groups(
            &self.state,
            request.into_inner(),
        )))
    }

    async fn delete_groups(
        &self,
        request: Request<DeleteGroupsRequest>,
    ) -> Result<Response<DeleteGroupsResponse>, Status> {
        group_admin::delete_groups(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }
}

/// Runs a control request on its own task, so that a controller giving up on the call (a
/// timeout, a lost connection) cannot stop it halfway: a request is applied whole or, when
/// refused, not at all.
async fn run_to_completion<T: Send + 'static>(
    request: &str,
    work: impl Future<Output = Result<T, Status>> + Send + 'static,
) -> Result<T, Status> {
    tokio::spawn(work)
        .await
        .map_err(|e| Status::internal(format!("{request} task failed: {e}")))?
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn leader_and_isr(
        &self,
        request: Request<LeaderAndIsrRequest>,
    ) -> Result<Response<LeaderAndIsrResponse>, Status> {
        let state = self.state.clone();
        run_to_completion("LeaderAndIsr", async move {
            control::leader_and_isr(&state, request.into_inner()).await
        })
        .await
        .map(Response::new)
    }

    async fn update_metadata(
        &self,
        request: Request<UpdateMetadataRequest>,
    ) -> Result<Response<UpdateMetadataResponse>, Status> {
        let state = self.state.clone();
        run_to_completion("UpdateMetadata", async move {
            control::update_metadata(&state, request.into_inner()).await
        })
        .await
        .map(Response::new)
    }

    async fn stop_replica(
        &self,
        request: Request<StopReplicaRequest>,
    ) -> Result<Response<StopReplicaResponse>, Status> {
        let state = self.state.clone();
        run_to_completion("StopReplica", async move {
            control::stop_replica(&state, request.into_inner()).await
        })
        .await
        .map(Response::new)
    }

    async fn controlled_shutdown(
        &self,
        request: Request<ControlledShutdownRequest>,
    ) -> Result<Response<ControlledShutdownResponse>, Status> {
        control_forward::controlled_shutdown(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn elect_preferred_leaders(
        &self,
        request: Request<ElectPreferredLeadersRequest>,
    ) -> Result<Response<ElectPreferredLeadersResponse>, Status> {
        control_forward::elect_preferred_leaders(&self.state, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn describe_replica_logs(
        &self,
        request: Request<DescribeReplicaLogsRequest>,
    ) -> Result<Response<DescribeReplicaLogsResponse>, Status> {
        let state = self.state.clone();
        run_to_completion("DescribeReplicaLogs", async move {
            control_describe_logs::describe_replica_logs(&state, request.into_inner()).await
        })
        .await
        .map(Response::new)
    }
}

/// Serves the gRPC API on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<BrokerState>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let max_message = state
        .config
        .socket_request_max_bytes
        .max(DEFAULT_MAX_BYTES + (1 << 20));
    let broker = BrokerServer::new(BrokerService {
        state: state.clone(),
    })
    .max_decoding_message_size(state.config.socket_request_max_bytes)
    .max_encoding_message_size(max_message);
    let admin = AdminServer::new(AdminService {
        state: state.clone(),
    })
    .max_decoding_message_size(state.config.socket_request_max_bytes)
    .max_encoding_message_size(max_message);
    let groups = GroupCoordinatorServer::new(GroupCoordinatorService {
        state: state.clone(),
    })
    .max_decoding_message_size(state.config.socket_request_max_bytes)
    .max_encoding_message_size(max_message);
    let consume = GroupConsumerServer::new(GroupConsumerService {
        state: state.clone(),
    })
    .max_decoding_message_size(state.config.socket_request_max_bytes)
    .max_encoding_message_size(max_message);
    // LeaderAndIsr and UpdateMetadata carry every partition of a large cluster: no lower
    // limit than client requests.
    let control = ControlServer::new(ControlService {
        state: state.clone(),
    })
    .max_decoding_message_size(state.config.socket_request_max_bytes)
    .max_encoding_message_size(max_message);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<BrokerServer<BrokerService>>()
        .await;
    health_reporter
        .set_serving::<AdminServer<AdminService>>()
        .await;
    health_reporter
        .set_serving::<GroupCoordinatorServer<GroupCoordinatorService>>()
        .await;
    health_reporter
        .set_serving::<GroupConsumerServer<GroupConsumerService>>()
        .await;
    health_reporter
        .set_serving::<ControlServer<ControlService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");

    // Nagle's algorithm would hold small responses for up to 40 ms; latency matters more.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_service(health)
        .add_service(reflection)
        .add_service(broker)
        .add_service(admin)
        .add_service(groups)
        .add_service(consume)
        .add_service(control)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
