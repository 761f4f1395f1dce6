//! The connection to a bootstrap broker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tributary_proto::v1::{admin_client::AdminClient, broker_client::BrokerClient};

use crate::ClientError;

/// Largest gRPC message sent or accepted: 64 MiB, so a fetch with a large `max_bytes` or a
/// produce request of several MiB fits (tonic's default is 4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// HTTP/2 flow-control windows. Measured on loopback they change little for 1 MiB messages,
/// but the 64 KiB default stalls large fetches on links with real latency.
const STREAM_WINDOW: u32 = 4 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// A connection to a Tributary broker. Cheap to clone: clones share the HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Client {
    broker: BrokerClient<Channel>,
    admin: AdminClient<Channel>,
    address: Arc<str>,
    next_request_id: Arc<AtomicU64>,
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
    /// Connects to the broker at `bootstrap` (`host:port` or `http://host:port`).
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        let uri = bootstrap_uri(bootstrap)?;
        let endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|source| ClientError::InvalidAddress {
                address: bootstrap.to_owned(),
                source,
            })?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW);
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| ClientError::Connect {
                address: uri.clone(),
                source,
            })?;
        Ok(Client::from_channel(channel, &uri))
    }

    /// Wraps an existing channel (for callers that configure tonic themselves).
    pub fn from_channel(channel: Channel, address: &str) -> Client {
        let broker = BrokerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let admin = AdminClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        Client {
            broker,
            admin,
            address: Arc::from(address),
            next_request_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The URI this client is connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The generated `Broker` service client (for calls this library does not wrap yet).
    pub fn broker_service(&self) -> BrokerClient<Channel> {
        self.broker.clone()
    }

    /// The generated `Admin` service client.
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
