//! The `osam` binary: parses the command line and hands over to the server or a command.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use osam_server::config::Config;
use osam_server::{dev_token, rights_command, server, telemetry};

/// osam: the Object Storage Access Manager (catalog authorization, S3 accounts and rights).
#[derive(Parser)]
#[command(name = "osam", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the gRPC API. Without --config, runs the embedded development setup on 127.0.0.1:50051.
    Serve {
        /// The TOML configuration file; OSAM_<SECTION>__<KEY> environment variables override it.
        #[arg(long, env = "OSAM_CONFIG")]
        config: Option<PathBuf>,
        /// The listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validates the configuration and prints it, secrets redacted.
    CheckConfig {
        #[arg(long, env = "OSAM_CONFIG")]
        config: Option<PathBuf>,
        /// Also reach the services it names: with the Keycloak directory, request an admin token.
        #[arg(long)]
        probe: bool,
    },
    /// Prints a user's S3 rights lists and policy document, computed offline (nothing is applied).
    Rights {
        /// The username (its own folder in the catch-all bucket is part of the rights).
        #[arg(long)]
        user: String,
        /// The user's roles, comma-separated (`rs_catalog_<owner>:<collection>_<action>`).
        #[arg(long, value_delimiter = ',', default_value = "")]
        roles: Vec<String>,
        /// The bucket configuration CSV (`owner,collection,product_type,expiration_days,bucket`).
        #[arg(long)]
        bucket_config: PathBuf,
        /// One JSON object with `read`, `read_download`, `write_download` and `policy`.
        #[arg(long)]
        json: bool,
    },
    /// Prints a token for an example user, signed with the development key (development setup only).
    DevToken {
        /// The username (see deploy/examples/users.yaml).
        #[arg(long)]
        user: String,
        #[arg(long, env = "OSAM_CONFIG")]
        config: Option<PathBuf>,
        /// Lifetime of the token in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.map(PathBuf::as_path)).map_err(|error| {
        eprintln!("osam: invalid configuration: {error}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => {
            let mut config = match load_config(config.as_ref()) {
                Ok(config) => config,
                Err(code) => return code,
            };
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            telemetry::init(&config.log);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("osam: cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(server::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "osam stopped");
                    eprintln!("osam: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { config, probe } => match load_config(config.as_ref()) {
            Ok(config) => {
                print!("{}", config.to_redacted_toml());
                eprintln!("osam: configuration is valid");
                if !probe {
                    return ExitCode::SUCCESS;
                }
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        eprintln!("osam: cannot start the runtime: {error}");
                        return ExitCode::FAILURE;
                    }
                };
                match runtime.block_on(server::probe(&config)) {
                    Ok(reached) => {
                        for line in reached {
                            eprintln!("osam: probe: {line}");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(error) => {
                        eprintln!("osam: probe failed: {error}");
                        ExitCode::from(3)
                    }
                }
            }
            Err(code) => code,
        },
        Command::Rights {
            user,
            roles,
            bucket_config,
            json,
        } => {
            let roles: Vec<String> = roles
                .into_iter()
                .map(|role| role.trim().to_owned())
                .filter(|role| !role.is_empty())
                .collect();
            match rights_command::render(&user, &roles, &bucket_config, json) {
                Ok(output) => {
                    print!("{output}");
                    if json {
                        println!();
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("osam: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Command::DevToken { user, config, ttl } => {
            let config = match load_config(config.as_ref()) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("osam: cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(dev_token::mint(&config, &user, ttl)) {
                Ok(token) => {
                    eprintln!(
                        "WARNING: this is a DEVELOPER credential for user {user:?}, signed with the local development key. \
                         Never use it, or the development setup, in production."
                    );
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("osam: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
