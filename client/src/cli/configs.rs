//! `tributary configs ...`: topic configuration overrides.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use tributary_client::{Admin, ConfigChange, TopicConfig};

use super::exit::UsageError;

/// Topic configuration commands.
#[derive(Debug, Subcommand)]
pub enum ConfigsCommand {
    /// Show a topic's effective configuration: every topic-level key, its value and whether it
    /// is a topic override or the broker default.
    Describe {
        /// The topic (all topics when omitted).
        #[arg(long)]
        topic: Option<String>,
    },
    /// Change a topic's overrides: set keys, remove overrides (back to the broker default).
    Alter {
        /// The topic.
        #[arg(long)]
        topic: String,
        /// Set an override, e.g. --set retention.ms=86400000 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = super::args::key_value)]
        set: Vec<(String, String)>,
        /// Remove an override (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        /// Check the change without storing it.
        #[arg(long)]
        validate_only: bool,
    },
}

pub async fn run(admin: &Admin, command: ConfigsCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        ConfigsCommand::Describe { topic } => {
            let topics: Vec<&str> = topic.as_deref().into_iter().collect();
            let mut described = admin
                .describe_configs(&topics)
                .await
                .context("describing topic configs")?;
            described.sort_by(|a, b| a.name.cmp(&b.name));
            out.write_all(render_configs(&described).as_bytes())?;
        }
        ConfigsCommand::Alter {
            topic,
            set,
            delete,
            validate_only,
        } => {
            if set.is_empty() && delete.is_empty() {
                return Err(UsageError(
                    "nothing to change: give --set KEY=VALUE and/or --delete KEY".to_owned(),
                )
                .into());
            }
            let change = ConfigChange {
                set: set.into_iter().collect(),
                delete: delete.into_iter().collect(),
            };
            admin
                .alter_configs(&topic, &change, validate_only)
                .await
                .with_context(|| format!("changing the config of topic {topic}"))?;
            if validate_only {
                writeln!(
                    out,
                    "The config change of topic {topic} is valid (not applied)."
                )?;
            } else {
                writeln!(out, "Changed the config of topic {topic}.")?;
            }
        }
    }
    Ok(())
}

/// A header line per topic, then `  key=value (source)` per key.
pub fn render_configs(topics: &[TopicConfig]) -> String {
    let mut out = String::new();
    for topic in topics {
        out.push_str(&format!(
            "Topic: {}\tOverrides: {}\n",
            topic.name,
            topic.overrides.len()
        ));
        for entry in &topic.entries {
            out.push_str(&format!(
                "  {}={} ({})\n",
                entry.name,
                entry.value,
                entry.source.label()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use tributary_client::{ConfigSource, ConfigValue};

    #[test]
    fn parses_alter() {
        let args = crate::cli::Args::try_parse_from([
            "tributary",
            "configs",
            "alter",
            "--topic",
            "orders",
            "--set",
            "retention.ms=1000",
            "--delete",
            "segment.ms",
            "--delete",
            "flush.ms",
        ])
        .unwrap();
        let crate::cli::Command::Configs(ConfigsCommand::Alter {
            topic, set, delete, ..
        }) = args.command
        else {
            panic!("wrong command");
        };
        assert_eq!(topic, "orders");
        assert_eq!(set, vec![("retention.ms".to_owned(), "1000".to_owned())]);
        assert_eq!(delete, vec!["segment.ms".to_owned(), "flush.ms".to_owned()]);
        assert!(
            crate::cli::Args::try_parse_from(["tributary", "configs", "alter", "--set", "a=b"])
                .is_err(),
            "--topic is required"
        );
    }

    #[test]
    fn config_lines() {
        let topic = TopicConfig {
            name: "orders".into(),
            overrides: [("retention.ms".to_owned(), "1000".to_owned())].into(),
            entries: vec![
                ConfigValue {
                    name: "retention.ms".into(),
                    value: "1000".into(),
                    source: ConfigSource::TopicOverride,
                },
                ConfigValue {
                    name: "segment.ms".into(),
                    value: "604800000".into(),
                    source: ConfigSource::BrokerDefault,
                },
            ],
        };
        assert_eq!(
            render_configs(&[topic]),
            "Topic: orders\tOverrides: 1\n  retention.ms=1000 (topic)\n  segment.ms=604800000 (default)\n"
        );
    }
}
