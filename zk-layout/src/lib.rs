//! The ZooKeeper znode tree and JSON payloads, exactly as classic Kafka (2.8, ZooKeeper mode)
//! writes them, so that `zkCli.sh` on a Tributary cluster reads like a Kafka one.
//!
//! Pure: paths ([`paths`]), payload types ([`payloads`]) and the id newtypes ([`ids`]); no I/O.
//! The controller's `zk` module does the talking to ZooKeeper.
//!
//! # The tree
//!
//! All paths are relative to the optional chroot in `zookeeper.connect`
//! (`127.0.0.1:2181/tributary`). P = persistent, E = ephemeral, PS = persistent sequential.
//!
//! ```text
//! path                                          mode writer                 payload
//! /controller                                   E    elected controller     ControllerRegistration
//! /controller_epoch                             P    controller (election)  decimal text (encode_controller_epoch)
//! /brokers
//! ├── ids                                       P    any broker             (empty)
//! │   └── <id>                                  E    the broker             BrokerRegistration (czxid = broker epoch)
//! ├── topics                                    P    any broker             (empty)
//! │   └── <topic>                               P    admin / controller     TopicAssignment
//! │       └── partitions                        P    controller             (empty)
//! │           └── <p>                           P    controller             (empty)
//! │               └── state                     P    controller, leader     PartitionState (zkVersion = CAS token)
//! └── seqid                                     P    broker id generator    (empty; its zkVersion is the counter)
//! /admin
//! ├── delete_topics                             P    any broker             (empty)
//! │   └── <topic>                               P    admin                  (empty: DELETE_TOPIC_DATA)
//! ├── preferred_replica_election                P    admin                  PreferredReplicaElection
//! └── reassign_partitions                       P    admin                  ReassignPartitions
//! /isr_change_notification                      P    any broker             (empty)
//! └── isr_change_<seq>                          PS   partition leader       IsrChangeNotification
//! /log_dir_event_notification                   P    any broker             (empty)
//! └── log_dir_event_<seq>                       PS   broker                 LogDirEventNotification
//! /config
//! ├── changes                                   P    any broker             (empty)
//! │   └── config_change_<seq>                   PS   admin                  ConfigChangeNotification
//! ├── topics/<topic>                            P    admin                  EntityConfig
//! └── clients, users, brokers, ips              P    any broker             (empty; entity configs below)
//! /cluster/id                                   P    first broker           ClusterId
//! /latest_producer_id_block                     P    brokers (CAS)          ProducerIdBlock
//! /consumers                                    P    any broker             (empty; old Scala consumers)
//! ```
//!
//! Every controller write is fenced by a version check of `/controller_epoch` in the same
//! multi (see `tributary_controller::zk::fenced`).

pub mod ids;
pub mod paths;
pub mod payloads;

pub use ids::{BrokerEpoch, BrokerId, ControllerEpoch, LeaderEpoch, PartitionId, ZkVersion};
pub use payloads::{Payload, PayloadError, PayloadKind};
