//! A client with nothing but gRPC can find the API: server reflection lists the services and
//! serves their descriptors, and the standard health service reports SERVING.

mod support;

use support::*;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn reflection_lists_and_describes_the_services_and_health_is_serving() {
    let (_zk, broker) = start().await;
    let mut reflection = ServerReflectionClient::new(broker.channel().unwrap());
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "tributary.v1.Broker".into(),
            )),
        },
    ];
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();

    let listed = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("expected a service list, got {listed:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "grpc.health.v1.Health",
        "tributary.v1.Admin",
        "tributary.v1.Broker",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let described = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::FileDescriptorResponse(files)) = described.message_response else {
        panic!("expected file descriptors, got {described:?}");
    };
    let file = files.file_descriptor_proto.first().expect("one descriptor");
    let text = String::from_utf8_lossy(file);
    assert!(
        text.contains("ProduceStream") && text.contains("FetchRequest"),
        "the descriptor carries the API"
    );

    let mut health = HealthClient::new(broker.channel().unwrap());
    for service in ["", "tributary.v1.Broker", "tributary.v1.Admin"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
}
