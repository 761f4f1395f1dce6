//! Self-tests of the harness: real ZooKeeper, and the process-management paths with stand-in
//! processes (`sleep`, small shell scripts) so they pass without a working broker.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tributary_integration_tests::{
    Broker, BrokerConfig, ManagedProcess, TestDir, ZooKeeper, pid_exists, proc_state,
};

#[test]
fn zookeeper_starts_answers_ruok_and_stops() {
    let mut zookeeper = ZooKeeper::start().expect("ZooKeeper should start");
    let pid = zookeeper.pid();
    assert!(pid_exists(pid));
    assert_eq!(zookeeper.four_letter_word("ruok").unwrap(), "imok");
    assert_eq!(
        zookeeper.connect_string(),
        format!("127.0.0.1:{}", zookeeper.port())
    );
    // Standalone mode, serving on loopback.
    let srvr = zookeeper.four_letter_word("srvr").unwrap();
    assert!(srvr.contains("Mode: standalone"), "srvr said: {srvr}");
    assert!(zookeeper.dir().join("zoo.cfg").is_file());

    zookeeper.stop().unwrap();
    assert!(!zookeeper.is_running());
    assert!(
        !pid_exists(pid),
        "ZooKeeper pid {pid} still exists after stop()"
    );
    assert!(
        zookeeper.four_letter_word("ruok").is_err(),
        "port still answers after stop()"
    );
}

#[test]
fn zookeeper_is_killed_and_its_dir_removed_on_drop() {
    let zookeeper = ZooKeeper::start().expect("ZooKeeper should start");
    let pid = zookeeper.pid();
    let dir = zookeeper.dir().to_owned();
    drop(zookeeper);
    assert!(!pid_exists(pid), "ZooKeeper pid {pid} leaked past drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[test]
fn zookeeper_servers_get_separate_ports() {
    let first = ZooKeeper::start().unwrap();
    let second = ZooKeeper::start().unwrap();
    assert_ne!(first.port(), second.port());
    assert_eq!(first.four_letter_word("ruok").unwrap(), "imok");
    assert_eq!(second.four_letter_word("ruok").unwrap(), "imok");
}

fn sleeper(dir: &TestDir) -> ManagedProcess {
    let mut command = Command::new("sleep");
    command.arg("600");
    ManagedProcess::spawn("sleeper", command, &dir.path().join("sleeper.log")).unwrap()
}

/// Waits for /proc to show `state` (signals are delivered asynchronously).
fn wait_for_state(pid: u32, wanted: &[char]) -> Option<char> {
    for _ in 0..200 {
        let state = proc_state(pid);
        if state.is_some_and(|state| wanted.contains(&state)) {
            return state;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    proc_state(pid)
}

#[test]
fn process_pause_resume_and_terminate() {
    let dir = TestDir::new("harness-selftest").unwrap();
    let mut process = sleeper(&dir);
    let pid = process.pid();
    assert!(process.is_running());

    process.pause().unwrap();
    assert_eq!(
        wait_for_state(pid, &['T']),
        Some('T'),
        "SIGSTOP did not stop pid {pid}"
    );
    assert!(process.is_running(), "a paused process is still running");
    process.resume().unwrap();
    let state = wait_for_state(pid, &['S', 'R']);
    assert!(
        matches!(state, Some('S' | 'R')),
        "SIGCONT did not resume pid {pid}: {state:?}"
    );

    // terminate() also works on a paused process (it sends SIGCONT first).
    process.pause().unwrap();
    let status = process.terminate(Duration::from_secs(5)).unwrap();
    assert!(!status.success());
    assert!(!pid_exists(pid));
    assert!(
        process.signal(libc::SIGTERM).is_err(),
        "signalling a reaped pid must be refused"
    );
    assert!(
        process
            .log_tail(5)
            .contains("=== harness: starting sleeper")
    );
}

#[test]
fn process_kill9_and_drop() {
    let dir = TestDir::new("harness-selftest").unwrap();
    let mut process = sleeper(&dir);
    let pid = process.pid();
    process.pause().unwrap();
    // SIGKILL works on a stopped process too.
    let status = process.kill9().unwrap();
    assert!(!status.success());
    assert!(!pid_exists(pid));
    // A second kill9 is a no-op that returns the same status.
    assert_eq!(process.kill9().unwrap(), status);

    let process = sleeper(&dir);
    let pid = process.pid();
    drop(process);
    assert!(!pid_exists(pid), "sleeper pid {pid} leaked past drop");
}

#[test]
fn process_is_killed_when_the_test_panics() {
    let dir = TestDir::new("harness-selftest").unwrap();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    let path = dir.path().to_owned();
    let result = std::thread::spawn(move || {
        let mut command = Command::new("sleep");
        command.arg("600");
        let process = ManagedProcess::spawn("doomed", command, &path.join("doomed.log")).unwrap();
        pid_tx.send(process.pid()).unwrap();
        panic!("simulated test failure");
    })
    .join();
    assert!(result.is_err());
    let pid = pid_rx.recv().unwrap();
    assert!(!pid_exists(pid), "pid {pid} leaked past a panic");
}

/// Writes an executable shell script standing in for the broker binary.
fn stand_in(dir: &TestDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `Broker::start`, retrying a spawn that hit ETXTBSY: another test thread forking while our
/// script's write fd is open makes exec fail with "Text file busy" for a moment.
async fn start_stand_in(config: BrokerConfig) -> anyhow::Result<Broker> {
    for _ in 0..5 {
        match Broker::start(config.clone()).await {
            Err(err) if format!("{err:#}").contains("Text file busy") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
    Broker::start(config).await
}

#[tokio::test]
async fn broker_start_fails_with_the_log_tail_when_the_process_exits() {
    let dir = TestDir::new("harness-selftest").unwrap();
    // The stand-in prints its config (argument 2 of `--config PATH`) and fails.
    let binary = stand_in(
        &dir,
        "broker",
        "cat \"$2\"; echo 'fake broker: cannot lock log.dirs' >&2; exit 3",
    );
    let config = BrokerConfig::new(7, "127.0.0.1:1")
        .with_override("num.partitions", 3)
        .with_override("zookeeper.connect", "127.0.0.1:2")
        .with_binary(binary);
    let err = start_stand_in(config)
        .await
        .expect_err("a failing broker must not start");
    let message = format!("{err:#}");
    assert!(message.contains("exited during start-up"), "{message}");
    assert!(
        message.contains("fake broker: cannot lock log.dirs"),
        "{message}"
    );
    assert!(message.contains("broker.id=7"), "{message}");
    assert!(
        message.contains("listeners=PLAINTEXT://127.0.0.1:"),
        "{message}"
    );
    assert!(message.contains("log.dirs=/"), "{message}");
    assert!(message.contains("num.partitions=3"), "{message}");
    // An override replaces the harness's own value instead of adding a duplicate key.
    assert!(
        message.contains("zookeeper.connect=127.0.0.1:2"),
        "{message}"
    );
    assert!(
        !message.contains("zookeeper.connect=127.0.0.1:1"),
        "{message}"
    );
}

#[tokio::test]
async fn broker_start_retries_once_when_the_port_is_taken() {
    let dir = TestDir::new("harness-selftest").unwrap();
    let binary = stand_in(
        &dir,
        "broker",
        "echo 'Error: Address already in use (os error 98)' >&2; exit 1",
    );
    let config = BrokerConfig::new(1, "127.0.0.1:1").with_binary(binary);
    let message = format!("{:#}", start_stand_in(config).await.expect_err("must fail"));
    assert!(
        message.contains("first attempt, port in use"),
        "no retry happened: {message}"
    );
}

#[tokio::test]
async fn broker_start_times_out_and_kills_a_broker_that_never_answers() {
    let dir = TestDir::new("harness-selftest").unwrap();
    let pid_file = dir.path().join("pid");
    let binary = stand_in(
        &dir,
        "broker",
        &format!("echo $$ > {}; exec sleep 600", pid_file.display()),
    );
    let config = BrokerConfig::new(1, "127.0.0.1:1")
        .with_binary(binary)
        .with_startup_timeout(Duration::from_millis(700));
    let message = format!(
        "{:#}",
        start_stand_in(config).await.expect_err("must time out")
    );
    assert!(message.contains("was not ready within"), "{message}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !pid_exists(pid),
        "the unready stand-in (pid {pid}) was left running"
    );
}

#[tokio::test]
async fn broker_start_with_a_missing_binary_says_so() {
    let config = BrokerConfig::new(1, "127.0.0.1:1").with_binary("/nonexistent/broker");
    let message = format!("{:#}", Broker::start(config).await.expect_err("must fail"));
    assert!(message.contains("/nonexistent/broker"), "{message}");
}
