//! How a failed command ends: one line on stderr and an exit status that says what kind of
//! failure it was (documented in `docs/cli.md`).

use std::process::ExitCode;

use tributary_client::{ClientError, ErrorCode};

/// An argument refused by a command before anything was sent (clap refuses the rest).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 1: the request failed: the broker refused it (any error code but those of
    /// `UnknownTopic`), it timed out, or something else went wrong.
    Failed = 1,
    /// 2: invalid arguments (also clap's own usage errors).
    Usage = 2,
    /// 3: no broker could be reached (connection refused, lost, timed out).
    Unreachable = 3,
    /// 4: the topic, partition or group does not exist (`UNKNOWN_TOPIC_OR_PARTITION`,
    /// `GROUP_ID_NOT_FOUND`).
    UnknownTopic = 4,
}

impl Status {
    /// The status for `error`: decided by the first cause that is a [`UsageError`] or a
    /// [`ClientError`].
    pub fn of(error: &anyhow::Error) -> Status {
        for cause in error.chain() {
            if cause.is::<UsageError>() {
                return Status::Usage;
            }
            if let Some(error) = cause.downcast_ref::<ClientError>() {
                return Status::of_client_error(error);
            }
        }
        Status::Failed
    }

    fn of_client_error(error: &ClientError) -> Status {
        match error {
            ClientError::InvalidAddress { .. } | ClientError::InvalidArgument { .. } => {
                Status::Usage
            }
            ClientError::Connect { .. } => Status::Unreachable,
            // For an `Rpc` error this is true exactly when it is a transport failure.
            ClientError::Rpc { .. } if error.needs_metadata_refresh() => Status::Unreachable,
            ClientError::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                ..
            }
            | ClientError::Group {
                code: ErrorCode::GroupIdNotFound,
                ..
            } => Status::UnknownTopic,
            _ => Status::Failed,
        }
    }

    /// As a process exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// `outer: cause: root cause` on one line, skipping a cause that repeats the previous one word
/// for word (hyper wraps connection errors that way); line breaks inside a message become
/// spaces.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text != previous {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        previous = text;
    }
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    fn broker(code: ErrorCode) -> anyhow::Error {
        anyhow::Error::from(ClientError::Broker {
            topic: "t".into(),
            partition: None,
            code,
            message: "m".into(),
        })
    }

    fn group(code: ErrorCode) -> anyhow::Error {
        anyhow::Error::from(ClientError::Group {
            group: "g".into(),
            code,
            message: "m".into(),
        })
    }

    #[test]
    fn statuses() {
        let rpc = |source| ClientError::Rpc {
            operation: "Metadata",
            source,
        };
        let table = [
            (
                broker(ErrorCode::UnknownTopicOrPartition),
                Status::UnknownTopic,
            ),
            (broker(ErrorCode::TopicAlreadyExists), Status::Failed),
            (group(ErrorCode::GroupIdNotFound), Status::UnknownTopic),
            (group(ErrorCode::NonEmptyGroup), Status::Failed),
            (group(ErrorCode::NotCoordinator), Status::Failed),
            (broker(ErrorCode::RequestTimedOut), Status::Failed),
            (
                rpc(tonic::Status::unavailable("refused")).into(),
                Status::Unreachable,
            ),
            (
                rpc(tonic::Status::invalid_argument("bad")).into(),
                Status::Failed,
            ),
            (
                ClientError::InvalidArgument {
                    argument: "partitions",
                    reason: "0".into(),
                }
                .into(),
                Status::Usage,
            ),
            (UsageError("no".into()).into(), Status::Usage),
            (anyhow::anyhow!("disk full"), Status::Failed),
        ];
        for (error, status) in table {
            assert_eq!(Status::of(&error), status, "{error:?}");
            let wrapped = Err::<(), _>(error).context("doing it").unwrap_err();
            assert_eq!(
                Status::of(&wrapped),
                status,
                "context does not hide the cause"
            );
        }
    }

    #[test]
    fn one_line_joins_causes_and_drops_repeats_and_line_breaks() {
        let error = broker(ErrorCode::UnknownTopicOrPartition)
            .context("describing topics")
            .context("describing topics");
        assert_eq!(
            one_line(&error),
            "describing topics: topic \"t\": UNKNOWN_TOPIC_OR_PARTITION: m"
        );
        let error = anyhow::anyhow!("first\nsecond  line").context("outer");
        assert_eq!(one_line(&error), "outer: first second line");
    }
}
