//! The connection to a bootstrap broker, and the shared routing state behind the data path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tributary_proto::v1::{admin_client::AdminClient, broker_client::BrokerClient};

use crate::ClientError;
use crate::routing::{RetryPolicy, Router};

/// Largest gRPC message sent or accepted: 64 MiB, so a fetch with a large `max_bytes` or a
/// produce request of several MiB fits (tonic's default is 4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// HTTP/2 flow-control windows. Measured on loopback they change little for 1 MiB messages,
/// but the 64 KiB default stalls large fetches on links with real latency.
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// A client of a Tributary cluster, started from one bootstrap broker. Cheap to clone: clones
/// share the connections and the metadata.
///
/// Admin calls and `Metadata` go to the bootstrap broker (any broker answers them). Produce,
/// fetch and offset lookups go to the partition's leader, found in metadata and reached over a
/// connection per broker opened on first use; see [`Client::leader_for`].
#[derive(Debug, Clone)]
pub struct Client {
    broker: BrokerClient<Channel>,
    admin: AdminClient<Channel>,
    address: Arc<str>,
    next_request_id: Arc<AtomicU64>,
    pub(crate) router: Arc<Router>,
    pub(crate) retry: RetryPolicy,
}

/// The endpoint settings every connection of a client uses (bootstrap and leaders alike).
pub(crate) fn endpoint(uri: &str, address: &str) -> Result<Endpoint, ClientError> {
    Ok(Endpoint::from_shared(uri.to_owned())
        .map_err(|source| ClientError::InvalidAddress {
            address: address.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW))
}

/// Turns `host:port` or `http://host:port` into the URI tonic connects to.
pub fn bootstrap_uri(bootstrap: &str) -> Result<String, ClientError> {
    let trimmed = bootstrap.trim();
    if trimmed.is_empty() {
        return Err(ClientError::InvalidArgument {
            argument: "bootstrap",
            reason: "the bootstrap address is empty".to_owned(),
        });
    }
    if trimmed.starts_with("http://") {
        Ok(trimmed.trim_end_matches('/').to_owned())
    } else if trimmed.contains("://") {
        Err(ClientError::InvalidArgument {
            argument: "bootstrap",
            reason: format!(
                "{trimmed:?}: only plain-text http:// addresses are supported (no TLS yet)"
            ),
        })
    } else {
        Ok(format!("http://{trimmed}"))
    }
}

impl Client {
    /// Connects to the broker at `bootstrap` (`host:port` or `http://host:port`). Connections
    /// to other brokers are opened when a request first needs them, with the same settings.
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        let uri = bootstrap_uri(bootstrap)?;
        let channel = endpoint(&uri, bootstrap)?
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                address: uri.clone(),
                source,
            })?;
        Ok(Client::from_channel(channel, &uri))
    }

    /// Wraps an existing channel to the bootstrap broker at `address` (for callers that
    /// configure tonic themselves). Connections to leaders use this crate's settings.
    pub fn from_channel(channel: Channel, address: &str) -> Client {
        let broker = BrokerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let admin = AdminClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let router = Router::new(address, broker.clone());
        Client {
            broker,
            admin,
            address: Arc::from(address),
            next_request_id: Arc::new(AtomicU64::new(1)),
            router: Arc::new(router),
            retry: RetryPolicy::default(),
        }
    }

    /// The bootstrap broker's URI.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The generated `Broker` service client of the bootstrap broker (for calls this library
    /// does not wrap yet). Partition requests sent on it reach that broker only; use
    /// [`Client::leader_for`] for the partition's leader.
    pub fn broker_service(&self) -> BrokerClient<Channel> {
        self.broker.clone()
    }

    /// The generated `Admin` service client of the bootstrap broker.
    pub fn admin_service(&self) -> AdminClient<Channel> {
        self.admin.clone()
    }

    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_addresses() {
        assert_eq!(
            bootstrap_uri("127.0.0.1:9092").unwrap(),
            "http://127.0.0.1:9092"
        );
        assert_eq!(
            bootstrap_uri(" localhost:9092 ").unwrap(),
            "http://localhost:9092"
        );
        assert_eq!(bootstrap_uri("http://h:1/").unwrap(), "http://h:1");
        assert!(matches!(
            bootstrap_uri(""),
            Err(ClientError::InvalidArgument {
                argument: "bootstrap",
                ..
            })
        ));
        assert!(bootstrap_uri("grpc://h:1").is_err());
        assert!(bootstrap_uri("https://h:1").is_err());
    }

    #[tokio::test]
    async fn connect_failure_names_the_address() {
        // Port 1 on loopback is closed on any sane machine.
        let error = Client::connect("127.0.0.1:1").await.unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }));
        assert!(error.to_string().contains("http://127.0.0.1:1"), "{error}");
        assert!(error.is_retriable());
    }
}
