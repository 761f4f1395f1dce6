//! One pipelined `ProduceStream` to one broker; the [`Producer`](super::Producer) and the
//! [`BatchSender`](super::BatchSender) keep one per broker they send to.
//!
//! ```text
//!  send ──lock──▶ pending.push_back(id, reply) ──▶ request channel ──▶ ProduceStream
//!                                                                          │
//!  reply futures ◀── pending.pop_front() matches request_id ◀── reader task ◀───┘
//! ```
//!
//! The broker answers a stream's requests in order, so the oldest pending request owns the
//! next response. Registering the request and queueing it happen under one short lock, so
//! the pending queue and the wire order always agree even when several tasks send.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tributary_proto::v1 as pb;
use tributary_proto::v1::broker_client::BrokerClient;

use crate::ClientError;

pub(super) const OPERATION: &str = "ProduceStream";

/// Where the broker's answer to one request goes: the whole response (one result per
/// partition the request named), or why the stream failed before it arrived.
pub(super) type Reply = oneshot::Sender<Result<pb::ProduceResponse, ClientError>>;

#[derive(Debug)]
struct Pending {
    request_id: u64,
    topic: String,
    partition: i32,
    reply: Reply,
}

#[derive(Debug)]
struct State {
    /// `None` once the stream has ended or failed; nothing more can be sent.
    requests: Option<mpsc::UnboundedSender<pb::ProduceRequest>>,
    /// Requests sent and not yet answered, oldest first.
    /// Invariant: in the order their requests were queued on `requests`.
    pending: VecDeque<Pending>,
    /// Why the stream ended, if it failed with a status.
    failure: Option<tonic::Status>,
}

impl State {
    fn closed_error(&self) -> ClientError {
        match &self.failure {
            Some(status) => ClientError::Rpc {
                operation: OPERATION,
                source: status.clone(),
            },
            None => ClientError::StreamClosed {
                operation: OPERATION,
            },
        }
    }

    /// Stops accepting requests and fails every pending one.
    fn close(&mut self, failure: Option<tonic::Status>) {
        self.requests = None;
        if self.failure.is_none() {
            self.failure = failure;
        }
        for pending in self.pending.drain(..) {
            let error = match &self.failure {
                Some(status) => ClientError::Rpc {
                    operation: OPERATION,
                    source: status.clone(),
                },
                None => ClientError::StreamClosed {
                    operation: OPERATION,
                },
            };
            let _ = pending.reply.send(Err(error));
        }
    }
}

/// A produce stream to one broker, read by a task of its own. Dropping it ends the request
/// stream; the reader still delivers the acknowledgements of what was sent, then finishes.
#[derive(Debug)]
pub(super) struct BrokerStream {
    state: Arc<Mutex<State>>,
    /// `None` only after [`BrokerStream::finish`] took it.
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl BrokerStream {
    /// Opens a produce stream on `service`'s connection. The stream is opened in the
    /// background: a failure to open it fails the requests already sent.
    pub(super) fn open(service: BrokerClient<Channel>) -> BrokerStream {
        let (requests, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State {
            requests: Some(requests),
            pending: VecDeque::new(),
            failure: None,
        }));
        let reader = tokio::spawn(read_responses(service, receiver, Arc::clone(&state)));
        BrokerStream {
            state,
            reader: Some(reader),
        }
    }

    /// Whether requests can still be sent (the stream has not ended or failed).
    pub(super) fn is_open(&self) -> bool {
        lock(&self.state).requests.is_some()
    }

    /// Requests sent and not yet answered.
    pub(super) fn in_flight(&self) -> usize {
        lock(&self.state).pending.len()
    }

    /// Queues `request` (`topic`/`partition` name it in errors); its answer goes to `reply`.
    pub(super) fn send(
        &self,
        request: pb::ProduceRequest,
        topic: &str,
        partition: i32,
        reply: Reply,
    ) -> Result<(), ClientError> {
        let request_id = request.request_id;
        let mut state = lock(&self.state);
        let Some(requests) = &state.requests else {
            return Err(state.closed_error());
        };
        if requests.send(request).is_err() {
            return Err(state.closed_error());
        }
        state.pending.push_back(Pending {
            request_id,
            topic: topic.to_owned(),
            partition,
            reply,
        });
        Ok(())
    }

    /// Gives up on the stream: every request not answered yet fails with
    /// [`ClientError::StreamClosed`] and later answers are ignored (used when a request outlives
    /// its timeout, so the requests behind it are re-sent on a fresh stream).
    pub(super) fn abort(mut self) {
        lock(&self.state).close(None);
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
    }

    /// Sends nothing more: the broker answers what was sent, then ends the stream, and the
    /// reader (returned, to be awaited) finishes after the last acknowledgement.
    pub(super) fn finish(mut self) -> Option<tokio::task::JoinHandle<()>> {
        lock(&self.state).requests = None;
        self.reader.take()
    }
}

impl Drop for BrokerStream {
    fn drop(&mut self) {
        lock(&self.state).requests = None;
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding this short lock cannot leave the queue half-updated in a way that
    // matters more than the panic itself; keep serving.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn read_responses(
    mut service: BrokerClient<Channel>,
    receiver: mpsc::UnboundedReceiver<pb::ProduceRequest>,
    state: Arc<Mutex<State>>,
) {
    let mut responses = match service
        .produce_stream(UnboundedReceiverStream::new(receiver))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            lock(&state).close(Some(status));
            return;
        }
    };
    loop {
        match responses.message().await {
            Ok(Some(response)) => {
                let mut guard = lock(&state);
                let Some(pending) = guard.pending.pop_front() else {
                    tracing::warn!(
                        request_id = response.request_id,
                        "produce response without a request"
                    );
                    guard.close(None);
                    return;
                };
                if response.request_id != pending.request_id {
                    let _ = pending.reply.send(Err(ClientError::MalformedResponse {
                        operation: OPERATION,
                        topic: pending.topic.clone(),
                        partition: Some(pending.partition),
                        reason: format!(
                            "response for request {} arrived when {} was expected",
                            response.request_id, pending.request_id
                        ),
                    }));
                    guard.close(None);
                    return;
                }
                drop(guard);
                let _ = pending.reply.send(Ok(response));
            }
            Ok(None) => {
                lock(&state).close(None);
                return;
            }
            Err(status) => {
                lock(&state).close(Some(status));
                return;
            }
        }
    }
}
