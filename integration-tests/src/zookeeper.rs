//! A real, standalone Apache ZooKeeper (Debian's 3.8 package) run directly with `java`, on a
//! free loopback port, with its data and log in a fresh temp dir. No mocks: the broker talks to
//! this exactly as it would in production.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::ports;
use crate::process::{LOG_TAIL_LINES, ManagedProcess};
use crate::tempdir::TestDir;

/// Where Debian's `zookeeper` package puts the server jar; its manifest Class-Path pulls in the
/// other jars it needs.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// Debian's classpath has slf4j-api but no binding, so without this jar ZooKeeper logs nothing.
const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// Debian's config dir (log4j settings); harmless if missing.
const ZOOKEEPER_CONF_DIR: &str = "/etc/zookeeper/conf";
/// A cold JVM answers `ruok` after ~0.3 s here; 30 s leaves room for a loaded 2-core CI box.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str = "run deploy/install-deps.sh (as root) to install ZooKeeper and Java";

/// A running standalone ZooKeeper server. Stopped (by PID) on [`stop`](Self::stop) or drop.
#[derive(Debug)]
pub struct ZooKeeper {
    process: ManagedProcess,
    port: u16,
    // Dropped after `process` (fields drop in declaration order), so the server is dead before
    // its data dir is removed.
    dir: TestDir,
}

impl ZooKeeper {
    /// Starts a server on a free loopback port and waits until it answers `ruok` with `imok` and
    /// is serving requests.
    ///
    /// Session timeouts are short (tickTime 250 ms, minSessionTimeout 500 ms) so that tests of
    /// broker death see the ephemeral znodes go within about a second.
    pub fn start() -> Result<Self> {
        let java = find_java()?;
        if !Path::new(ZOOKEEPER_JAR).is_file() {
            bail!("ZooKeeper is not installed ({ZOOKEEPER_JAR} is missing): {INSTALL_HINT}");
        }
        let dir = TestDir::new("zookeeper")?;
        match Self::start_in(&java, dir) {
            // The free-port race (see `ports`): one retry with a new port and a fresh dir.
            Err(StartError::AddressInUse(first)) => {
                let dir = TestDir::new("zookeeper")?;
                Self::start_in(&java, dir).map_err(|retry| {
                    anyhow::anyhow!("{}\n(first attempt: {first:#})", retry.into_anyhow())
                })
            }
            other => other.map_err(StartError::into_anyhow),
        }
    }

    fn start_in(java: &Path, dir: TestDir) -> std::result::Result<Self, StartError> {
        let port = ports::free_port()?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).context("cannot create ZooKeeper data dir")?;
        let cfg_path = dir.path().join("zoo.cfg");
        crate::process::write_file(&cfg_path, &zoo_cfg(&data_dir, port))?;

        let mut classpath = format!("{ZOOKEEPER_CONF_DIR}:{ZOOKEEPER_JAR}");
        if Path::new(SLF4J_SIMPLE_JAR).is_file() {
            classpath.push(':');
            classpath.push_str(SLF4J_SIMPLE_JAR);
        }
        let mut command = Command::new(java);
        command
            .arg("-Xmx256m")
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            // Absolute path as an argument: Debian's zkEnv ignores ZOOCFGDIR, and so do we.
            .arg(&cfg_path)
            .current_dir(dir.path());
        let log_path = dir.path().join("zookeeper.log");
        let process = ManagedProcess::spawn("zookeeper", command, &log_path)?;
        let mut zk = Self { process, port, dir };
        zk.wait_until_ready(STARTUP_TIMEOUT)?;
        Ok(zk)
    }

    fn wait_until_ready(&mut self, timeout: Duration) -> std::result::Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_exit_status()? {
                let tail = self.process.log_tail(LOG_TAIL_LINES);
                let err = anyhow::anyhow!(
                    "ZooKeeper exited during start-up ({status}); log {}:\n{tail}",
                    self.log_path().display()
                );
                return Err(if ports::log_says_address_in_use(&tail) {
                    StartError::AddressInUse(err)
                } else {
                    StartError::Other(err)
                });
            }
            if self.is_serving() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "ZooKeeper did not answer ruok with imok within {timeout:?} on {}; log {}:\n{}",
                    self.connect_string(),
                    self.log_path().display(),
                    self.process.log_tail(LOG_TAIL_LINES)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ready = `ruok` answers `imok` *and* `srvr` reports a mode. `ruok` alone is not enough:
    /// measured here, it answers `imok` as soon as the port is bound, while `srvr` still says
    /// "not currently serving requests" for a few ms as the database loads, and a client
    /// connecting then is dropped.
    fn is_serving(&self) -> bool {
        matches!(self.four_letter_word("ruok"), Ok(reply) if reply == "imok")
            && matches!(self.four_letter_word("srvr"), Ok(reply) if reply.contains("Mode:"))
    }

    /// `127.0.0.1:<port>`, the value for the broker's `zookeeper.connect`.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's stdout/stderr log.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_owned()
    }

    /// The directory holding `zoo.cfg`, the data dir and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends a four-letter-word command (`ruok`, `srvr`, `mntr`, `stat`, ...) and returns the
    /// reply. All commands are whitelisted in the generated `zoo.cfg`.
    pub fn four_letter_word(&self, command: &str) -> Result<String> {
        let addr = ([127, 0, 0, 1], self.port).into();
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(command.as_bytes())?;
        stream.shutdown(Shutdown::Write)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Stops the server: SIGTERM, then SIGKILL if it has not exited within 5 s. Its data dir is
    /// removed when `self` is dropped.
    pub fn stop(&mut self) -> Result<()> {
        if self.process.terminate(Duration::from_secs(5)).is_err() {
            self.process.kill9()?;
        }
        Ok(())
    }

    /// SIGSTOP: the server freezes; clients see their connection go quiet and, after two thirds
    /// of their session timeout, disconnected.
    pub fn pause(&mut self) -> Result<()> {
        self.process.pause()
    }

    /// SIGCONT after [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<()> {
        self.process.resume()
    }

    /// SIGKILL: a ZooKeeper crash.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9().map(drop)
    }
}

/// The generated configuration. Kept as one string so it shows up whole in the temp dir.
fn zoo_cfg(data_dir: &Path, port: u16) -> String {
    format!(
        "# Generated by tributary-integration-tests.\n\
         tickTime=250\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         # Jetty's admin server would grab :8080, which parallel tests would fight over.\n\
         admin.enableServer=false\n\
         # ruok/srvr/mntr are off by default in 3.8; readiness uses ruok.\n\
         4lw.commands.whitelist=*\n\
         # Short sessions so a killed broker's ephemeral znodes disappear in ~0.6 s.\n\
         minSessionTimeout=500\n\
         maxSessionTimeout=60000\n\
         maxClientCnxns=0\n",
        data_dir.display()
    )
}

/// `$JAVA_HOME/bin/java` if set, else `java` on `PATH`.
fn find_java() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = Path::new(&home).join("bin/java");
        if java.is_file() {
            return Ok(java);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("java"))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!("java is not installed (not on PATH, JAVA_HOME unset): {INSTALL_HINT}")
        })
}

/// Start failures, split so that only the free-port race is retried.
#[derive(Debug)]
enum StartError {
    AddressInUse(anyhow::Error),
    Other(anyhow::Error),
}

impl StartError {
    fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::AddressInUse(err) | Self::Other(err) => err,
        }
    }
}

impl From<anyhow::Error> for StartError {
    fn from(err: anyhow::Error) -> Self {
        Self::Other(err)
    }
}

impl From<std::io::Error> for StartError {
    fn from(err: std::io::Error) -> Self {
        Self::Other(err.into())
    }
}
