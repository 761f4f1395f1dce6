//! A child process owned by a test: spawned with its output in a log file, signalled by PID, and
//! always killed and reaped on drop (also when the test panics), so no test leaks a process.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How many log lines error messages and panic reports include.
pub const LOG_TAIL_LINES: usize = 40;

/// A running child process whose stdout and stderr go to `log_path` (appended, so the log of a
/// restarted process keeps the earlier runs).
#[derive(Debug)]
pub struct ManagedProcess {
    /// A short name for messages, e.g. "broker 1" or "zookeeper".
    name: String,
    child: Child,
    log_path: PathBuf,
    /// Set once the child has been reaped; the PID may then belong to another process, so no
    /// signal is ever sent after this.
    exit_status: Option<ExitStatus>,
}

impl ManagedProcess {
    /// Spawns `command` with stdin closed and stdout/stderr appended to `log_path`.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> Result<Self> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("cannot open log file {}", log_path.display()))?;
        // A marker so the runs of a restarted process can be told apart in one log.
        writeln!(log, "=== harness: starting {name}: {command:?}")?;
        let stderr = log.try_clone()?;
        command.stdin(Stdio::null()).stdout(log).stderr(stderr);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path: log_path.to_owned(),
            exit_status: None,
        })
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Returns the exit status if the process has exited (reaping it), `None` while it runs.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit_status.is_none() {
            self.exit_status = self
                .child
                .try_wait()
                .with_context(|| format!("waitpid {}", self.name))?;
        }
        Ok(self.exit_status)
    }

    /// Whether the process is still running (a stopped process counts as running).
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// Sends `signal` (a `libc::SIG*` constant). Refuses once the process has been reaped.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<()> {
        if self.try_exit_status()?.is_some() {
            bail!(
                "{} (pid {}) has already exited; cannot send signal {signal}",
                self.name,
                self.pid()
            );
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) takes plain integers and touches no memory of ours. The PID is our own
        // unreaped child (checked above), so it cannot have been reused by another process.
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            bail!("kill({pid}, {signal}) for {} failed: {err}", self.name);
        }
        Ok(())
    }

    /// SIGKILL, then reap. Returns the exit status. A no-op if the process already exited.
    pub fn kill9(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.signal(libc::SIGKILL)?;
        // SIGKILL cannot be caught, so this wait is short (also for a SIGSTOPped process).
        let status = self
            .child
            .wait()
            .with_context(|| format!("waitpid {}", self.name))?;
        self.exit_status = Some(status);
        Ok(status)
    }

    /// SIGTERM, then waits up to `grace` for the process to exit. Resumes a paused process first
    /// (a stopped process would not act on SIGTERM). Fails if it is still running after `grace`;
    /// the caller decides whether to `kill9` then.
    pub fn terminate(&mut self, grace: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.signal(libc::SIGCONT)?;
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) still running {grace:?} after SIGTERM; log tail ({}):\n{}",
                    self.name,
                    self.pid(),
                    self.log_path.display(),
                    self.log_tail(LOG_TAIL_LINES)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGSTOP: the process freezes (sockets stay open, nothing answers), like a long GC pause
    /// or a hung machine.
    ///
    /// Returns once every thread of the process is stopped: kill(2) returns before a busy
    /// process has actually stopped, and a test that then counts on "nothing is answered any
    /// more" could see one last answer otherwise (seen once under load).
    pub fn pause(&mut self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !all_threads_stopped(self.pid()) {
            if std::time::Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) did not stop within 5 s of SIGSTOP",
                    self.name,
                    self.pid()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    /// SIGCONT: undoes [`pause`](Self::pause).
    pub fn resume(&mut self) -> Result<()> {
        self.signal(libc::SIGCONT)
    }

    /// The scheduler state letter from `/proc/<pid>/stat` (`R`, `S`, `T` = stopped, `Z`, ...),
    /// or `None` if the process is gone. Linux only; used to check pause/resume took effect.
    pub fn proc_state(&self) -> Option<char> {
        proc_state(self.pid())
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: show what the process said, since its temp dir is about to go.
            eprintln!(
                "--- harness: {} (pid {}) log tail, {} ---\n{}",
                self.name,
                self.pid(),
                self.log_path.display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        if let Err(err) = self.kill9() {
            eprintln!(
                "harness: failed to kill {} (pid {}): {err:#}",
                self.name,
                self.pid()
            );
        }
    }
}

/// The last `lines` lines of the file at `path` (or a note saying why it could not be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("<cannot read {}: {err}>", path.display()),
    }
}

/// The scheduler state of any process, from `/proc/<pid>/stat`; `None` if there is no such
/// process.
pub fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces, so parse after ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether every thread of `pid` is in the stopped state (`T`) per `/proc/<pid>/task/*/stat`.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.trim_start().chars().next())
            })
            .is_some_and(|state| state == 'T')
    })
}

/// Whether a process with this PID exists (any state except reaped). Signal 0 checks existence
/// without delivering anything.
pub fn pid_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Creates (or truncates) the file at `path` and writes `text` to it (used for config files).
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
