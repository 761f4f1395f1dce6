//! Controller election among real broker processes: exactly one controller, every broker
//! knows it, and a killed or frozen controller is replaced by another broker with a higher
//! `/controller_epoch`.

use std::time::{Duration, Instant};

use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
use tributary_proto::v1::MetadataRequest;
use tributary_zk_layout::payloads::{ControllerRegistration, Payload, decode_controller_epoch};
use zookeeper_client as zk;

async fn zk_client(zookeeper: &ZooKeeper) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&zookeeper.connect_string())
        .await
        .expect("connect to ZooKeeper")
}

/// `/controller`'s broker id and `/controller_epoch`, if a controller is elected.
async fn controller_in_zk(client: &zk::Client) -> Option<(i32, i32)> {
    let (data, _) = client.get_data("/controller").await.ok()?;
    let controller = ControllerRegistration::decode(&data)
        .expect("controller payload")
        .broker_id
        .0;
    let (epoch, _) = client
        .get_data("/controller_epoch")
        .await
        .expect("epoch exists with a controller");
    Some((
        controller,
        decode_controller_epoch(&epoch).expect("epoch payload").0,
    ))
}

async fn controller_seen_by(broker: &Broker) -> Option<i32> {
    let mut client = broker.broker_client().ok()?;
    let metadata = client
        .metadata(MetadataRequest { topics: vec![] })
        .await
        .ok()?
        .into_inner();
    (metadata.controller_id >= 0).then_some(metadata.controller_id)
}

/// Polls until `/controller` names a broker other than `not` and every broker in `brokers`
/// reports it through Metadata; returns (controller, epoch, time taken).
async fn agreed_controller(
    client: &zk::Client,
    brokers: &[&Broker],
    not: Option<i32>,
    limit: Duration,
) -> (i32, i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some((controller, epoch)) = controller_in_zk(client).await
            && Some(controller) != not
        {
            let mut all_agree = true;
            for broker in brokers {
                all_agree &= controller_seen_by(broker).await == Some(controller);
            }
            if all_agree {
                return (controller, epoch, start.elapsed());
            }
        }
        assert!(
            start.elapsed() < limit,
            "no agreed controller (other than {not:?}) within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_controller_is_elected_and_replaced_when_it_dies_or_freezes() {
    let zookeeper = ZooKeeper::start().unwrap();
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(
            Broker::start(BrokerConfig::new(id, zookeeper.connect_string()))
                .await
                .unwrap(),
        );
    }
    let client = zk_client(&zookeeper).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let (first, epoch, _) = agreed_controller(&client, &all, None, Duration::from_secs(30)).await;
    assert_eq!(epoch, 1, "the first election takes the epoch from 0 to 1");

    // kill -9 the controller: its session expires (3 s in tests) and another broker takes over.
    let index = brokers.iter().position(|b| b.id() == first).unwrap();
    brokers[index].kill9().unwrap();
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id() != first).collect();
    let (second, epoch, took) =
        agreed_controller(&client, &survivors, Some(first), Duration::from_secs(30)).await;
    assert_eq!(epoch, 2, "the new controller has a higher epoch");
    eprintln!("controller failover after kill -9: {took:?} (session timeout 3 s)");

    // The killed broker comes back as a follower of the new controller.
    brokers[index].restart().await.unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    assert_eq!(
        agreed_controller(&client, &all, None, Duration::from_secs(30))
            .await
            .0,
        second
    );

    // Freeze the controller past its session: the others elect a third one; once resumed, the
    // frozen broker learns it is no longer the controller.
    let index = brokers.iter().position(|b| b.id() == second).unwrap();
    brokers[index].pause().unwrap();
    let others: Vec<&Broker> = brokers.iter().filter(|b| b.id() != second).collect();
    let (third, epoch, _) =
        agreed_controller(&client, &others, Some(second), Duration::from_secs(30)).await;
    assert_eq!(epoch, 3);
    brokers[index].resume().unwrap();
    let all: Vec<&Broker> = brokers.iter().collect();
    assert_eq!(
        agreed_controller(&client, &all, None, Duration::from_secs(30))
            .await
            .0,
        third
    );
}

#[tokio::test]
async fn a_clean_shutdown_of_the_controller_hands_over_at_once() {
    let zookeeper = ZooKeeper::start().unwrap();
    // Long sessions: only the explicit session close can make the handover fast.
    let mut brokers = Vec::new();
    for id in 1..=2 {
        let config = BrokerConfig::new(id, zookeeper.connect_string())
            .with_override("zookeeper.session.timeout.ms", 30_000);
        brokers.push(Broker::start(config).await.unwrap());
    }
    let client = zk_client(&zookeeper).await;
    let all: Vec<&Broker> = brokers.iter().collect();
    let (first, _, _) = agreed_controller(&client, &all, None, Duration::from_secs(30)).await;
    let index = brokers.iter().position(|b| b.id() == first).unwrap();
    brokers[index].terminate().await.unwrap();
    let other: Vec<&Broker> = brokers.iter().filter(|b| b.id() != first).collect();
    let (second, epoch, _) =
        agreed_controller(&client, &other, Some(first), Duration::from_secs(15)).await;
    assert_ne!(second, first);
    assert_eq!(epoch, 2);
}
