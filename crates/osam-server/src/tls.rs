//! TLS and mutual TLS for the gRPC port, with rustls on aws-lc-rs. The certificate, key and client
//! CA files are re-read when they change (a renewed certificate from cert-manager or a rotated
//! Secret is served without a restart); a broken new set keeps the previous one and logs why.
//! Handshakes run in their own tasks with a timeout, so a slow or silent client never holds up
//! the accept loop.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::TlsConfig;

/// The longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;

/// The current rustls configuration, replaced when the files change.
pub struct ReloadingTls {
    files: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
    stamps: RwLock<Vec<Option<(SystemTime, u64)>>>,
}

impl ReloadingTls {
    /// Loads the files once; an error here stops the server from starting.
    pub fn load(files: &TlsConfig) -> Result<Arc<ReloadingTls>, String> {
        let stamps = stamps_of(files);
        let config = server_config(files)?;
        Ok(Arc::new(ReloadingTls {
            files: files.clone(),
            current: RwLock::new(config),
            stamps: RwLock::new(stamps),
        }))
    }

    pub fn mutual(&self) -> bool {
        !self.files.client_ca_file.as_os_str().is_empty()
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reloads when a file's modification time or size changed; returns whether a new
    /// configuration is in use.
    pub fn reload_if_changed(&self) -> bool {
        let stamps = stamps_of(&self.files);
        {
            let known = self
                .stamps
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if *known == stamps {
                return false;
            }
        }
        *self
            .stamps
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stamps;
        match server_config(&self.files) {
            Ok(config) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
                tracing::info!(cert_file = %self.files.cert_file.display(), "TLS files reloaded");
                true
            }
            Err(error) => {
                tracing::error!(%error, "the changed TLS files are not usable; serving the previous ones");
                false
            }
        }
    }

    pub fn spawn_reloader(self: &Arc<Self>) {
        let tls = Arc::downgrade(self);
        let interval = Duration::from_secs(self.files.reload_interval_seconds);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(tls) = tls.upgrade() else { return };
                // File reads and PEM parsing stay off the async workers.
                if tokio::task::spawn_blocking(move || tls.reload_if_changed())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }

    /// TLS connections accepted on `listener`, for tonic's `serve_with_incoming`.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (sender, receiver) = mpsc::channel(64);
        let tls = self.clone();
        let handshakes = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                // The server stopped reading connections: stop accepting (and close the listener).
                let accepted = tokio::select! {
                    () = sender.closed() => return,
                    accepted = listener.accept() => accepted,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                // Beyond the limit, a new connection waits for a handshake slot (the kernel's
                // backlog queues the rest) instead of spawning without bound.
                let Ok(slot) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send(Ok(stream)).await;
                        }
                        Ok(Err(error)) => tracing::info!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

fn stamps_of(files: &TlsConfig) -> Vec<Option<(SystemTime, u64)>> {
    [&files.cert_file, &files.key_file, &files.client_ca_file]
        .into_iter()
        .map(|path| {
            let metadata = std::fs::metadata(path).ok()?;
            Some((metadata.modified().ok()?, metadata.len()))
        })
        .collect()
}

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("{key} {}: {error}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{key} {}: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{key} {}: no certificate in the file", path.display()));
    }
    Ok(certificates)
}

fn server_config(files: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&files.cert_file, "server.tls.cert_file")?;
    // The key's content never goes into an error message, only its path.
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|error| format!("server.tls.key_file {}: {error}", files.key_file.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?;
    let builder = if files.client_ca_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in certificates(&files.client_ca_file, "server.tls.client_ca_file")? {
            roots
                .add(certificate)
                .map_err(|error| format!("server.tls.client_ca_file: {error}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|error| format!("server.tls.client_ca_file: {error}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| format!("server.tls: the certificate and key do not make a usable pair: {error}"))?;
    // gRPC runs over HTTP/2 only.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
