//! Structured logs on stderr: text for people, JSON for pipelines. `RUST_LOG` overrides the
//! configured filter.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Audit events are always written, whatever `log.filter` or `RUST_LOG` say.
const AUDIT_DIRECTIVE: &str = "osam::audit=info";

pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"))
        // The audit log is not operational logging: a quieter filter must not switch it off.
        .add_directive(AUDIT_DIRECTIVE.parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    if let Err(error) = installed {
        eprintln!("osam: logging was already initialised: {error}");
    }
}
