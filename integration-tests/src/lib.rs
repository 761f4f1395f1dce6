//! Test harness: real ZooKeeper and broker processes on free loopback ports, and the failures
//! scenario tests inject into them (SIGKILL, SIGTERM, SIGSTOP/SIGCONT, restart on the same data).
//!
//! ```no_run
//! # async fn scenario() -> anyhow::Result<()> {
//! use tributary_integration_tests::{Broker, BrokerConfig, ZooKeeper};
//! let zookeeper = ZooKeeper::start()?;
//! let mut broker = Broker::start(BrokerConfig::new(1, zookeeper.connect_string())).await?;
//! let mut client = broker.broker_client()?;
//! broker.kill9()?;
//! broker.restart().await?; // same port, same log.dirs: recovery runs
//! # Ok(()) }
//! ```
//!
//! Rules the harness keeps:
//! - Every process is killed and reaped when its handle drops, including when a test panics; a
//!   panicking test also prints the tail of each process's log.
//! - Everything listens on 127.0.0.1 only.
//! - Nothing is skipped silently: a missing `java`, ZooKeeper jar or `broker` binary is an error
//!   that says how to fix it (`deploy/install-deps.sh`, `cargo build --workspace --bins`).
//! - Set `TRIBUTARY_KEEP_TEST_DIRS=1` to keep configs, data and logs after the test.
//!
//! Several brokers are several [`Broker`]s sharing one [`ZooKeeper`]; a `Cluster` type can
//! collect them when replication lands.

mod binaries;
mod broker;
mod ports;
mod process;
mod tempdir;
mod zookeeper;

pub use binaries::{BROKER_BIN_ENV, CLI_BIN_ENV, broker_binary, cli_binary, profile_dir};
pub use broker::{Broker, BrokerConfig};
pub use ports::free_port;
pub use process::{ManagedProcess, log_tail, pid_exists, proc_state};
pub use tempdir::{KEEP_DIRS_ENV, TestDir};
pub use zookeeper::{ZOOKEEPER_JAR, ZooKeeper};
