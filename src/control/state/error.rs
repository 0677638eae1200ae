//! Why the control state refused a start, a reload or a request. Each
//! variant's text is what the operator reads (log line, `rampart ctl`
//! answer, `status`'s last reload error); [`ControlError::code`] is the API
//! error code it answers with.

use std::io;

use crate::config::ConfigError;
use crate::control::model::{code, ApiError};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The config text given at start does not parse as TOML.
    #[error("config as TOML: {0}")]
    StartToml(#[source] toml::de::Error),
    /// A reload in a run that was given no config file.
    #[error("this run has no config file to reload")]
    NoConfigFile,
    /// The config file cannot be read.
    #[error("{path}: {source}")]
    ReadConfig { path: String, source: io::Error },
    /// The reloaded file is not a valid config (check-config's message).
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// The new config text does not parse as a TOML tree.
    #[error("{0}")]
    ConfigToml(#[source] toml::de::Error),
    /// An edit makes an invalid config: check-config's message, prefixed
    /// by its key, without line numbers (they would point into text the
    /// operator never wrote).
    #[error("{0}")]
    InvalidEdit(String),
    /// The new config changes what only a restart can change.
    #[error("{0}; that takes a restart of rampart")]
    NeedsRestart(String),
    /// The edited tree cannot be written back as TOML.
    #[error("{0}")]
    WriteToml(#[source] toml::ser::Error),
    /// The running config's tree lacks the shape an edit needs.
    #[error("{0}")]
    Shape(&'static str),
    #[error("no VIP named `{0}`")]
    NoVip(String),
    /// `backend` names no backend of VIP `vip`.
    #[error("VIP `{vip}` has no backend {backend}")]
    NotOnVip { vip: String, backend: String },
    /// No VIP lists the backend an override names.
    #[error("no VIP has backend {0}")]
    UnknownBackend(String),
    #[error("`{0}` is not ADDR:PORT ([ADDR]:PORT for IPv6) or an address")]
    BadBackend(String),
    /// An override names a backend without its port.
    #[error("`{0}`: give the backend as ADDR:PORT")]
    NeedsPort(String),
    #[error("state `{0}`: expected one of up, down, drain, clear")]
    BadState(String),
    #[error("limit {limit} is over {max}")]
    LimitTooHigh { limit: u32, max: u32 },
    /// A VIP drain with no `[bgp]` announcing anything.
    #[error("no [bgp] section is enabled: nothing is announced, so there is nothing to drain")]
    NoBgp,
}

impl ControlError {
    /// The API error code ([`code`]) this error answers with.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::InvalidConfig(_)
            | ControlError::ConfigToml(_)
            | ControlError::InvalidEdit(_)
            | ControlError::NeedsRestart(_)
            | ControlError::StartToml(_) => code::INVALID_CONFIG,
            ControlError::NoConfigFile
            | ControlError::ReadConfig { .. }
            | ControlError::WriteToml(_)
            | ControlError::Shape(_) => code::FAILED,
            ControlError::NoVip(_)
            | ControlError::NotOnVip { .. }
            | ControlError::UnknownBackend(_) => code::NOT_FOUND,
            ControlError::BadBackend(_)
            | ControlError::NeedsPort(_)
            | ControlError::BadState(_)
            | ControlError::LimitTooHigh { .. }
            | ControlError::NoBgp => code::BAD_REQUEST,
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        ApiError {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_are_the_api_answers() {
        let cases = [
            (
                ControlError::NoConfigFile,
                code::FAILED,
                "this run has no config file to reload",
            ),
            (
                ControlError::NeedsRestart("[dpdk] changed".into()),
                code::INVALID_CONFIG,
                "[dpdk] changed; that takes a restart of rampart",
            ),
            (
                ControlError::NotOnVip {
                    vip: "web".into(),
                    backend: "198.18.1.10:80".into(),
                },
                code::NOT_FOUND,
                "VIP `web` has no backend 198.18.1.10:80",
            ),
            (
                ControlError::LimitTooHigh {
                    limit: 20_000,
                    max: 10_000,
                },
                code::BAD_REQUEST,
                "limit 20000 is over 10000",
            ),
        ];
        for (e, code, message) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.code.as_str(), api.message.as_str()), (code, message));
        }
    }
}
