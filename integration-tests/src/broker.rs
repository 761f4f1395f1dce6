//! One real `broker` process: its own temp dir (config, log dirs, log file), a loopback port
//! kept across restarts, and the signals that scenario tests use to inject failures.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tributary_proto::v1::MetadataRequest;
use tributary_proto::v1::admin_client::AdminClient;
use tributary_proto::v1::broker_client::BrokerClient;

use crate::binaries;
use crate::ports;
use crate::process::{LOG_TAIL_LINES, ManagedProcess};
use crate::tempdir::TestDir;

/// How long a clean shutdown may take before the test fails (the broker flushes and writes its
/// clean-shutdown marker; seconds at most, unless it hangs, which is the bug we want to see).
const TERMINATE_GRACE: Duration = Duration::from_secs(30);

/// What to start. Build with [`BrokerConfig::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `broker.id`.
    pub broker_id: i32,
    /// `zookeeper.connect`, e.g. [`ZooKeeper::connect_string`](crate::ZooKeeper::connect_string).
    pub zookeeper_connect: String,
    /// Extra `server.properties` entries, in order; a key given here replaces the harness's own
    /// value for it (`broker.id`, `listeners`, `log.dirs`, `zookeeper.connect`,
    /// `zookeeper.session.timeout.ms` (3000 in tests)).
    pub overrides: Vec<(String, String)>,
    /// The binary to run; `None` means [`binaries::broker_binary`].
    pub binary: Option<PathBuf>,
    /// How long to wait for the broker to become ready (health SERVING and Metadata answering).
    pub startup_timeout: Duration,
}

impl BrokerConfig {
    /// A broker with id `broker_id` registering in the ZooKeeper at `zookeeper_connect`.
    pub fn new(broker_id: i32, zookeeper_connect: impl Into<String>) -> Self {
        Self {
            broker_id,
            zookeeper_connect: zookeeper_connect.into(),
            overrides: Vec::new(),
            binary: None,
            // A debug build on a loaded 2-core box starts in well under a second; log recovery
            // after kill -9 may take longer, hence the margin.
            startup_timeout: Duration::from_secs(30),
        }
    }

    /// Sets a `server.properties` key (Kafka key names, e.g. `log.segment.bytes`).
    pub fn with_override(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.overrides.push((key.into(), value.to_string()));
        self
    }

    /// Runs `binary` instead of the workspace's `broker` (for harness tests with stand-ins).
    pub fn with_binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = Some(binary.into());
        self
    }

    /// Sets how long [`Broker::start`] and [`Broker::restart`] wait for readiness.
    pub fn with_startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }
}

/// A broker process. Killed on drop (also when the test panics); its temp dir goes with it.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    binary: PathBuf,
    port: u16,
    /// `None` after [`kill9`](Self::kill9) or [`terminate`](Self::terminate).
    // Declared before `dir`, so the process dies before its directory is removed.
    process: Option<ManagedProcess>,
    /// Holds `server.properties`, `data/` (log.dirs) and `broker.log`.
    dir: TestDir,
}

impl Broker {
    /// Starts a broker on a free loopback port with a fresh data dir and waits until it is
    /// ready. Retries once on a new port if the first one was taken meanwhile (see [`ports`]).
    pub async fn start(config: BrokerConfig) -> Result<Self> {
        let binary = match &config.binary {
            Some(binary) => binary.clone(),
            None => binaries::broker_binary()?,
        };
        let dir = TestDir::new(&format!("broker-{}", config.broker_id))?;
        std::fs::create_dir_all(dir.path().join("data"))
            .context("cannot create broker data dir")?;
        let mut broker = Self {
            config,
            binary,
            port: ports::free_port()?,
            process: None,
            dir,
        };
        if let Err(first) = broker.spawn_and_wait().await {
            if !broker.exited_because_address_in_use() {
                return Err(first);
            }
            broker.port = ports::free_port()?;
            broker
                .spawn_and_wait()
                .await
                .map_err(|retry| anyhow!("{retry:#}\n(first attempt, port in use: {first:#})"))?;
        }
        Ok(broker)
    }

    /// Starts the broker again with the same id, port, config and data dir, and waits until it
    /// is ready. A running broker is first shut down cleanly ([`terminate`](Self::terminate));
    /// call [`kill9`](Self::kill9) first to restart after a crash instead.
    pub async fn restart(&mut self) -> Result<()> {
        if self.process.is_some() {
            self.terminate().await?;
        }
        self.spawn_and_wait().await
    }

    /// `broker.id`.
    pub fn id(&self) -> i32 {
        self.config.broker_id
    }

    /// The gRPC port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for tonic clients.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, for the CLI's `--bootstrap-server`.
    pub fn bootstrap_server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's stderr/stdout log (all runs, separated by `=== harness:` lines).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log_path(), lines)
    }

    /// `log.dirs`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The generated `server.properties`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    /// The configuration the broker was started with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The PID while a process exists (running or paused).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ManagedProcess::pid)
    }

    /// Whether the process is alive (a paused process is alive).
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(ManagedProcess::is_running)
    }

    /// SIGKILL: a crash. The next [`restart`](Self::restart) runs log recovery.
    pub fn kill9(&mut self) -> Result<()> {
        let mut process = self.process.take().context("broker is not running")?;
        process.kill9().map(drop)
    }

    /// SIGTERM and wait for a clean shutdown. Fails (after a SIGKILL) if the broker does not exit
    /// within 30 s, or exits with a failure status.
    pub async fn terminate(&mut self) -> Result<ExitStatus> {
        let mut process = self.process.take().context("broker is not running")?;
        if let Some(status) = process.try_exit_status()? {
            bail!(
                "broker {} had already exited ({status}); log tail:\n{}",
                self.id(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        // A paused process would sit on SIGTERM forever.
        process.resume()?;
        process.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + TERMINATE_GRACE;
        loop {
            if let Some(status) = process.try_exit_status()? {
                if !status.success() {
                    bail!(
                        "broker {} exited with {status} after SIGTERM; log tail:\n{}",
                        self.id(),
                        self.log_tail(LOG_TAIL_LINES)
                    );
                }
                return Ok(status);
            }
            if Instant::now() >= deadline {
                process.kill9()?;
                bail!(
                    "broker {} did not exit within {TERMINATE_GRACE:?} of SIGTERM (killed); log tail:\n{}",
                    self.id(),
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGSTOP: the broker freezes with its sockets open (a GC pause or a hung host). Its
    /// ZooKeeper session expires after the session timeout.
    pub fn pause(&mut self) -> Result<()> {
        self.process
            .as_mut()
            .context("broker is not running")?
            .pause()
    }

    /// SIGCONT: undoes [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<()> {
        self.process
            .as_mut()
            .context("broker is not running")?
            .resume()
    }

    /// A gRPC channel to this broker (connects lazily on first use, so it also works for a
    /// broker that is down right now).
    pub fn channel(&self) -> Result<Channel> {
        Ok(Endpoint::from_shared(self.endpoint())?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy())
    }

    /// A client for the `tributary.v1.Broker` service.
    pub fn broker_client(&self) -> Result<BrokerClient<Channel>> {
        Ok(BrokerClient::new(self.channel()?))
    }

    /// A client for the `tributary.v1.Admin` service.
    pub fn admin_client(&self) -> Result<AdminClient<Channel>> {
        Ok(AdminClient::new(self.channel()?))
    }

    /// A `tributary` CLI command with `--bootstrap-server` set to this broker; add the
    /// subcommand and run it.
    pub fn cli(&self) -> Result<Command> {
        let mut command = Command::new(binaries::cli_binary()?);
        command
            .arg("--bootstrap-server")
            .arg(self.bootstrap_server());
        Ok(command)
    }

    /// Writes `server.properties`, spawns the binary and waits for readiness.
    async fn spawn_and_wait(&mut self) -> Result<()> {
        crate::process::write_file(&self.config_path(), &self.server_properties())?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path());
        // Readable logs by default; a caller's RUST_LOG wins (it is inherited).
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        command.env("RUST_BACKTRACE", "1");
        let name = format!("broker {}", self.id());
        self.process = Some(ManagedProcess::spawn(&name, command, &self.log_path())?);
        let timeout = self.config.startup_timeout;
        let result = self.wait_until_ready(timeout).await;
        if result.is_err() {
            // Don't leave a half-started broker behind for the retry or the caller.
            if let Some(mut process) = self.process.take() {
                process.kill9()?;
            }
        }
        result
    }

    /// Polls until the health service says SERVING (or is not implemented) and Metadata
    /// answers. Fails early, with the log tail, if the process exits.
    pub async fn wait_until_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_error = anyhow!("no readiness probe has run yet");
        loop {
            let process = self.process.as_mut().context("broker is not running")?;
            if let Some(status) = process.try_exit_status()? {
                bail!(
                    "broker {} exited during start-up ({status}) on port {}; log {}:\n{}",
                    self.id(),
                    self.port,
                    self.log_path().display(),
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            match self.probe().await {
                Ok(()) => return Ok(()),
                Err(err) => last_error = err,
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker {} was not ready within {timeout:?} at {} (last probe: {last_error:#}); log {}:\n{}",
                    self.id(),
                    self.endpoint(),
                    self.log_path().display(),
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One readiness probe with short timeouts.
    async fn probe(&self) -> Result<()> {
        let channel = Endpoint::from_shared(self.endpoint())?
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(2))
            .connect()
            .await
            .context("connect")?;
        let request = HealthCheckRequest {
            service: String::new(),
        };
        match HealthClient::new(channel.clone()).check(request).await {
            Ok(response) => {
                let status = response.into_inner().status;
                if status != ServingStatus::Serving as i32 {
                    bail!("health status is {status}, not SERVING");
                }
            }
            // The contract says the health service is on; tolerate its absence so Metadata alone
            // decides, rather than failing for a missing extra.
            Err(status) if status.code() == tonic::Code::Unimplemented => {}
            Err(status) => return Err(anyhow!(status).context("health check")),
        }
        BrokerClient::new(channel)
            .metadata(MetadataRequest { topics: Vec::new() })
            .await
            .context("Metadata")?;
        Ok(())
    }

    fn exited_because_address_in_use(&self) -> bool {
        ports::log_says_address_in_use(&self.log_tail(LOG_TAIL_LINES))
    }

    fn server_properties(&self) -> String {
        let config = &self.config;
        let mut entries: Vec<(String, String)> = vec![
            ("broker.id".into(), config.broker_id.to_string()),
            (
                "listeners".into(),
                format!("PLAINTEXT://127.0.0.1:{}", self.port),
            ),
            ("log.dirs".into(), path_string(&self.data_dir())),
            ("zookeeper.connect".into(), config.zookeeper_connect.clone()),
            // Short sessions so a broker restarted after kill -9 waits seconds, not 18 s, for
            // its previous registration to expire (the harness ZooKeeper allows >= 500 ms).
            ("zookeeper.session.timeout.ms".into(), "3000".into()),
            // A controlled shutdown that cannot complete (no controller left) retries quickly.
            ("controlled.shutdown.retry.backoff.ms".into(), "500".into()),
        ];
        for (key, value) in &config.overrides {
            match entries.iter_mut().find(|(existing, _)| existing == key) {
                Some(entry) => entry.1.clone_from(value),
                None => entries.push((key.clone(), value.clone())),
            }
        }
        let mut text = String::from("# Generated by tributary-integration-tests.\n");
        for (key, value) in entries {
            text.push_str(&format!("{key}={value}\n"));
        }
        text
    }
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
