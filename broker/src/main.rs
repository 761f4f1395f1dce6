//! `broker`: runs one Tributary broker.
//!
//! ```text
//! broker [CONFIG | --config CONFIG] [--override key=value]...
//! ```
//! SIGTERM or Ctrl-C shuts down cleanly (logs flushed, clean-shutdown marker written).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tributary_broker::config::BrokerConfig;

/// Runs a Tributary broker.
#[derive(Debug, Parser)]
#[command(name = "broker", version, about)]
struct Args {
    /// Path to server.properties (Kafka key names).
    #[arg(value_name = "CONFIG")]
    config_file: Option<PathBuf>,
    /// Path to server.properties (same as the positional argument).
    #[arg(long = "config", value_name = "CONFIG", conflicts_with = "config_file")]
    config_flag: Option<PathBuf>,
    /// Overrides one property; repeatable (e.g. --override broker.id=2).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line with the cause chain: what an operator needs (no backtrace noise).
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let path = args.config_file.or(args.config_flag);
    let config = BrokerConfig::load(path.as_deref(), &args.overrides)
        .context("invalid broker configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start tokio")?;
    runtime.block_on(async move {
        Box::pin(tributary_broker::run(config, shutdown_signal(), |_| ()))
            .await
            .context("broker failed")
    })
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
