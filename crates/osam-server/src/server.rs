//! Composition: builds the identity, the auth layer and the services from the configuration,
//! serves them with health and reflection, and shuts down gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use osam_policy::CatalogPolicy;
use osam_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::audit::Audit;
use crate::auth::dev_key::DevelopmentKey;
use crate::auth::keys::{AsymmetricKeys, JwksKeys, KeyStore};
use crate::auth::live_roles::LiveRoles;
use crate::auth::token::{ClaimMapping, TokenRules, TokenVerifier};
use crate::auth::{AuthLayer, Authenticator};
use crate::config::{Config, DirectoryKind, KeySource};
use crate::directory::static_file::StaticFileDirectory;
use crate::edge::{EdgeLayer, EdgeLimits};
use crate::identity::{FixedScopeTable, Identity};
use crate::metrics::InstrumentedDirectory;
use crate::services::accounts::{AccountService, CredentialsEndpoint};
use crate::services::catalog::CatalogAuthzService;
use crate::services::rights::RightsService;
use crate::storage::Storage;
use crate::sync::{Leadership, SyncSettings, SyncWorker};
use crate::tls::ReloadingTls;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("directory: {0}")]
    Directory(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("auth: {0}")]
    Keys(String),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("leader election: {0}")]
    LeaderElection(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("server: {0}")]
    Serve(String),
}

/// The gRPC service names whose health is reported (the empty name is the whole server).
const SERVICE_NAMES: [&str; 4] = [
    "",
    "osam.v1.CatalogAuthz",
    "osam.v1.RightsService",
    "osam.v1.AccountService",
];

/// The file in the state directory holding the attributes osam writes on static-directory users.
const STATIC_ATTRIBUTES_FILE: &str = "static-directory-attributes.json";

/// Loads the static directory configured (or the embedded example users), with the attributes
/// osam wrote on its users.
pub fn load_static_directory(config: &Config) -> Result<Arc<StaticFileDirectory>, StartError> {
    if config.directory.kind != DirectoryKind::Static {
        return Err(StartError::Directory(
            "this needs the static directory (directory.kind = \"static\")".into(),
        ));
    }
    let file = Some(&config.directory.file).filter(|file| !file.as_os_str().is_empty());
    let attributes = config.server.effective_state_dir().join(STATIC_ATTRIBUTES_FILE);
    let directory = StaticFileDirectory::load(
        file.map(PathBuf::as_path),
        config.role_scope_table()?,
        Some(&attributes),
    )
    .map_err(StartError::Directory)?;
    Ok(Arc::new(directory))
}

/// The configured directory with its role → scope table.
fn build_identity(config: &Config) -> Result<Identity, StartError> {
    match config.directory.kind {
        DirectoryKind::Static => {
            let directory = load_static_directory(config)?;
            directory.spawn_reloader(Duration::from_secs(config.directory.reload_interval_seconds));
            Ok(Identity::new(
                Arc::new(InstrumentedDirectory(directory.clone())),
                directory,
            ))
        }
        DirectoryKind::Keycloak => {
            let keycloak = &config.directory.keycloak;
            let client = keycloak_client(config)?;
            tracing::info!(base_url = %keycloak.base_url, realm = %keycloak.realm, client_id = %keycloak.client_id, "directory: keycloak");
            let directory = Arc::new(InstrumentedDirectory(Arc::new(
                osam_keycloak::KeycloakDirectory::new(client),
            )));
            let scope_table = FixedScopeTable::new(config.role_scope_table()?);
            Ok(Identity::new(directory, Arc::new(scope_table)))
        }
    }
}

/// With `accounts.leader_election.enabled`, campaigns for the sync Lease in the background and
/// returns the leadership the sync follows, and the sender that ends the campaign (releasing the
/// Lease) at shutdown.
async fn start_leader_election(
    config: &Config,
) -> Result<(Leadership, tokio::sync::oneshot::Sender<()>), StartError> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let election = &config.accounts.leader_election;
    if !election.enabled {
        return Ok((Leadership::Alone, stop));
    }
    let namespace = election.effective_namespace().ok_or_else(|| {
        StartError::LeaderElection(
            "no namespace: set accounts.leader_election.namespace or POD_NAMESPACE".into(),
        )
    })?;
    let identity = election.effective_identity().ok_or_else(|| {
        StartError::LeaderElection("no identity: set accounts.leader_election.identity or POD_NAME".into())
    })?;
    let store = osam_lease::KubeLeaseStore::from_environment(&namespace, election.lease_name.clone())
        .await
        .map_err(|error| StartError::LeaderElection(error.to_string()))?;
    let elector = osam_lease::LeaderElector::new(identity.clone(), election.timings())
        .map_err(|error| StartError::LeaderElection(error.to_string()))?;
    tracing::info!(%namespace, lease = %election.lease_name, %identity, "campaigning for the sync lease");
    let (is_leader, leadership) = tokio::sync::watch::channel(false);
    tokio::spawn(osam_lease::run_elected(
        store,
        elector,
        is_leader,
        async move {
            let _ = stopped.await;
        },
        // The sync worker follows the channel; nothing else runs only on the leader.
        std::future::pending::<()>,
    ));
    Ok((Leadership::Elected(leadership), stop))
}

/// The Keycloak admin client of `[directory.keycloak]`.
fn keycloak_client(config: &Config) -> Result<osam_keycloak::AdminClient, StartError> {
    osam_keycloak::AdminClient::new(config.directory.keycloak.settings()?)
        .map_err(|error| StartError::Directory(error.to_string()))
}

/// `osam check-config --probe`: with the Keycloak directory, requests an admin token (the one
/// call that proves the URL, realm, client and secret together) and says what answered. The token
/// issuer's keys and the object store are not probed.
pub async fn probe(config: &Config) -> Result<Vec<String>, StartError> {
    let mut reached = Vec::new();
    if config.directory.kind == DirectoryKind::Keycloak {
        let keycloak = &config.directory.keycloak;
        let client = keycloak_client(config)?;
        client
            .probe()
            .await
            .map_err(|error| StartError::Directory(error.to_string()))?;
        reached.push(format!(
            "keycloak: client {:?} obtained an admin token from realm {:?} at {}",
            keycloak.client_id, keycloak.realm, keycloak.base_url
        ));
    } else {
        reached.push("static directory: nothing to reach".to_owned());
    }
    Ok(reached)
}

fn key_store(config: &Config) -> Result<KeyStore, StartError> {
    let auth = &config.auth;
    let asymmetric = match auth.key_source {
        KeySource::Development => {
            let state_dir = config.server.effective_state_dir();
            let key = DevelopmentKey::load_or_create(&state_dir)
                .map_err(|error| StartError::Keys(error.to_string()))?;
            tracing::warn!(
                kid = key.kid(),
                state_dir = %state_dir.display(),
                "development signing key in use: tokens from `osam dev-token` are accepted; never use this setup in production"
            );
            AsymmetricKeys::Fixed {
                kid: Some(key.kid().to_owned()),
                key: Arc::new(key.decoding_key().clone()),
            }
        }
        KeySource::PublicKeyFile => {
            let pem = std::fs::read(&auth.public_key_file).map_err(|error| {
                StartError::Keys(format!(
                    "auth.public_key_file {}: {error}",
                    auth.public_key_file.display()
                ))
            })?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .or_else(|_| DecodingKey::from_ec_pem(&pem))
                .or_else(|_| DecodingKey::from_ed_pem(&pem))
                .map_err(|error| StartError::Keys(format!("auth.public_key_file: {error}")))?;
            AsymmetricKeys::Fixed {
                kid: None,
                key: Arc::new(key),
            }
        }
        KeySource::OidcDiscovery => AsymmetricKeys::Jwks(Box::new(
            JwksKeys::discover(
                auth.issuer.clone(),
                Duration::from_secs(auth.jwks_timeout_seconds),
                Duration::from_secs(auth.jwks_min_refresh_seconds),
            )
            .map_err(StartError::Keys)?,
        )),
        KeySource::Jwks => AsymmetricKeys::Jwks(Box::new(
            JwksKeys::new(
                auth.jwks_url.clone(),
                Duration::from_secs(auth.jwks_timeout_seconds),
                Duration::from_secs(auth.jwks_min_refresh_seconds),
            )
            .map_err(StartError::Keys)?,
        )),
    };
    let hmac_secret = if auth.hmac_secret_file.as_os_str().is_empty() {
        None
    } else {
        let secret = std::fs::read(&auth.hmac_secret_file).map_err(|error| {
            StartError::Keys(format!(
                "auth.hmac_secret_file {}: {error}",
                auth.hmac_secret_file.display()
            ))
        })?;
        let secret = secret.trim_ascii();
        if secret.len() < 32 {
            return Err(StartError::Keys(
                "auth.hmac_secret_file: the secret must be at least 32 bytes".into(),
            ));
        }
        Some(DecodingKey::from_secret(secret))
    };
    Ok(KeyStore::new(asymmetric, hmac_secret))
}

/// The auth layer: token rules and claims from `[auth]`, and the directory check of callers
/// (disabled users, live roles).
fn auth_layer(config: &Config, identity: Arc<Identity>) -> Result<AuthLayer, StartError> {
    let rules = TokenRules {
        algorithms: config.auth.algorithms.clone(),
        issuer: config.auth.issuer.clone(),
        audience: config.auth.audience.clone(),
        leeway_seconds: config.auth.leeway_seconds,
    };
    let claims = ClaimMapping {
        role_claims: config.auth.role_claims.clone(),
        groups_claim: config.auth.groups_claim.clone(),
        username_claim: config.auth.username_claim.clone(),
    };
    let verifier = TokenVerifier::new(
        key_store(config)?,
        rules,
        claims,
        config.auth.token_cache_capacity,
    );
    // Keycloak keeps issued tokens valid after a user is disabled: check the user at the
    // directory (cached) unless turned off, and take the directory's roles with live roles.
    let check_presence =
        config.auth.reject_disabled_users && config.directory.kind == DirectoryKind::Keycloak;
    let live_roles = (config.auth.live_roles || check_presence).then(|| {
        LiveRoles::new(
            Duration::from_secs(config.auth.live_roles_ttl_seconds),
            config.auth.live_roles,
            config.auth.live_roles_exempt_prefix.clone(),
        )
    });
    Ok(AuthLayer::new(Arc::new(Authenticator::new(
        verifier, identity, live_roles,
    ))))
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let identity = Arc::new(build_identity(&config)?);

    let auth_layer = auth_layer(&config, identity.clone())?;

    let catalog = CatalogAuthzService::new(
        CatalogPolicy::new(config.catalog.admin_roles.iter().cloned()),
        identity.clone(),
        config.catalog.max_batch_size,
        Audit::new(config.audit.allowed_decisions_sample_rate),
    );
    let storage = Arc::new(Storage::start(&config).await.map_err(StartError::Storage)?);
    let rights = RightsService::new(identity.clone(), storage.clone());
    let sync_interval = Some(Duration::from_secs(config.accounts.sync_interval_seconds))
        .filter(|interval| !interval.is_zero());
    let (leadership, stop_election) = start_leader_election(&config).await?;
    let sync = SyncWorker::start(
        identity.directory(),
        storage.clone(),
        SyncSettings::from_config(&config.accounts).map_err(StartError::Storage)?,
        sync_interval,
        leadership,
    );
    if config.accounts.sync_on_start {
        sync.trigger(false);
    }
    let endpoint = CredentialsEndpoint {
        endpoint: config.storage.s3.endpoint.clone(),
        region: config.storage.s3.region.clone(),
    };
    let sync_to_stop = sync.clone();
    let accounts = AccountService::new(
        identity.clone(),
        storage,
        sync,
        config.accounts.link_attribute.clone(),
        endpoint,
        Duration::from_secs(config.accounts.credentials_cache_seconds),
    );

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    set_health(&health_reporter, ServingStatus::Serving).await;
    // Both reflection versions: grpcurl releases before 1.9 only speak v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(osam_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|error| StartError::Reflection(error.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|error| StartError::Reflection(error.to_string()))?;

    let address = config.server.listen;
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| StartError::Listen {
            address: address.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| StartError::Listen {
        address: address.to_string(),
        source,
    })?;
    let tls = if config.server.tls.enabled() {
        let tls = ReloadingTls::load(&config.server.tls).map_err(StartError::Tls)?;
        tls.spawn_reloader();
        Some(tls)
    } else {
        None
    };
    if !config.metrics.listen.is_empty() {
        let metrics_address: SocketAddr = config.metrics.listen.parse().map_err(|_| StartError::Listen {
            address: config.metrics.listen.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an address"),
        })?;
        let metrics_bound =
            crate::metrics::serve(metrics_address)
                .await
                .map_err(|source| StartError::Listen {
                    address: metrics_address.to_string(),
                    source,
                })?;
        tracing::info!(address = %metrics_bound, "metrics listening");
    }
    tracing::info!(
        address = %bound,
        tls = tls.is_some(),
        mutual_tls = tls.as_ref().is_some_and(|tls| tls.mutual()),
        "listening"
    );

    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let shutdown_requested = Arc::new(tokio::sync::Notify::new());
    let drain_delay = Duration::from_secs(config.server.shutdown_drain_delay_seconds);
    let shutdown = {
        let shutdown_requested = shutdown_requested.clone();
        let health_reporter = health_reporter.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("shutting down: health set to NOT_SERVING, draining in-flight calls");
            set_health(&health_reporter, ServingStatus::NotServing).await;
            if !drain_delay.is_zero() {
                tracing::info!(
                    seconds = drain_delay.as_secs(),
                    "still serving while load balancers notice NOT_SERVING"
                );
                tokio::time::sleep(drain_delay).await;
            }
            // Stop the sync first, then hand the lease over at once rather than after its
            // duration: the next leader never overlaps this replica's run.
            sync_to_stop.stop().await;
            let _ = stop_election.send(());
            shutdown_requested.notify_one();
        }
    };

    let limits = &config.server;
    let max_message = limits.max_message_bytes;
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(limits.http2_keepalive_interval_seconds)))
        .http2_keepalive_timeout(Some(Duration::from_secs(limits.http2_keepalive_timeout_seconds)))
        .max_concurrent_streams(Some(limits.http2_max_concurrent_streams))
        // The edge (request id, load shedding, RPC metrics) runs before authentication.
        // The server's time limit is the edge's (a waiting SyncAccounts is exempt); tonic still
        // ends a call at the client's deadline (`grpc-timeout`).
        .layer(EdgeLayer::new(EdgeLimits {
            max_concurrent_requests: limits.max_concurrent_requests,
            request_timeout: Duration::from_secs(limits.request_timeout_seconds),
            max_message_bytes: max_message,
        }))
        .layer(auth_layer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            pb::catalog_authz_server::CatalogAuthzServer::new(catalog)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        )
        .add_service(
            pb::rights_service_server::RightsServiceServer::new(rights)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        )
        .add_service(
            pb::account_service_server::AccountServiceServer::new(accounts)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
        );
    let server = async move {
        match tls {
            Some(tls) => {
                router
                    .serve_with_incoming_shutdown(tls.incoming(listener), shutdown)
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                    .await
            }
        }
    };

    tokio::select! {
        served = server => served.map_err(|error| StartError::Serve(error.to_string()))?,
        () = async { shutdown_requested.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = grace.as_secs(), "in-flight calls did not finish within the grace period");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    for service in SERVICE_NAMES {
        reporter.set_service_status(service, status).await;
    }
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
