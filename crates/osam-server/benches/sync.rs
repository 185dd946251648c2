//! The account sync at scale: 10,000 directory users synced (a) against the embedded provider and
//! (b) against an in-memory provider that adds 20 ms to every call, as a remote IAM would. The
//! directory is in memory so that the figures are the sync's and the provider's. Prints users per
//! second, provider calls per second against the latency bound (concurrency × 50 calls/s), and the
//! process's peak resident memory.
//!
//! cargo bench -p osam-server --bench sync [-- USERS]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osam_policy::accounts::{
    Account, AccountCredentials, AccountProvider, MarkerTemplate, ProviderError, ProviderFuture, Secret,
};
use osam_policy::bucket_source::BucketConfigSource;
use osam_policy::sync_plan::DeleteShare;
use osam_policy::{Directory, DirectoryError, DirectoryFuture, DirectoryUser};
use osam_s3::{EmbeddedProvider, FileBucketConfig};
use osam_server::storage::Storage;
use osam_server::sync::{Leadership, SyncSettings, SyncWorker};

const CONCURRENCY: usize = 8;
const LATENCY: Duration = Duration::from_millis(20);

/// Users in memory; attribute writes are map updates.
struct MemoryDirectory {
    users: Mutex<BTreeMap<String, DirectoryUser>>,
}

impl Directory for MemoryDirectory {
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        let user = self.users.lock().expect("lock").get(username).cloned();
        Box::pin(async move { Ok(user) })
    }

    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>> {
        let users = self.users.lock().expect("lock").values().cloned().collect();
        Box::pin(async move { Ok(users) })
    }

    fn set_attribute<'a>(
        &'a self,
        username: &'a str,
        name: &'a str,
        values: Vec<String>,
    ) -> DirectoryFuture<'a, ()> {
        Box::pin(async move {
            let mut users = self.users.lock().expect("lock");
            let user = users
                .get_mut(username)
                .ok_or_else(|| DirectoryError::UserNotFound(username.to_owned()))?;
            user.attributes.insert(name.to_owned(), values);
            Ok(())
        })
    }
}

/// Accounts in memory, every call delayed by [`LATENCY`].
#[derive(Default)]
struct LatencyProvider {
    accounts: Mutex<HashMap<String, Account>>,
    calls: Mutex<u64>,
}

impl LatencyProvider {
    async fn call(&self) {
        *self.calls.lock().expect("lock") += 1;
        tokio::time::sleep(LATENCY).await;
    }
}

impl AccountProvider for LatencyProvider {
    fn list_accounts(&self) -> ProviderFuture<'_, Vec<Account>> {
        Box::pin(async move {
            self.call().await;
            Ok(self.accounts.lock().expect("lock").values().cloned().collect())
        })
    }

    fn create_account<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, (Account, AccountCredentials)> {
        Box::pin(async move {
            self.call().await;
            let mut accounts = self.accounts.lock().expect("lock");
            let id = format!("acc-{:06}", accounts.len() + 1);
            let account = Account {
                id: id.clone(),
                marker: marker.to_owned(),
                access_key_id: format!("KEY{id}"),
            };
            accounts.insert(id, account.clone());
            let credentials = AccountCredentials {
                access_key_id: account.access_key_id.clone(),
                secret_access_key: Secret::new("s"),
            };
            Ok((account, credentials))
        })
    }

    fn delete_account<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.call().await;
            self.accounts
                .lock()
                .expect("lock")
                .remove(account_id)
                .map(|_| ())
                .ok_or(ProviderError::NotFound(account_id.into()))
        })
    }

    fn credentials<'a>(&'a self, _: &'a str) -> ProviderFuture<'a, AccountCredentials> {
        Box::pin(async { Err(ProviderError::Unavailable("not used by the bench".into())) })
    }

    fn apply_policy<'a>(&'a self, _: &'a str, _: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.call().await;
            Ok(())
        })
    }

    fn remove_policy<'a>(&'a self, _: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(async move {
            self.call().await;
            Ok(())
        })
    }
}

fn directory(users: usize) -> Arc<MemoryDirectory> {
    let users = (0..users)
        .map(|i| {
            let username = format!("user{i:05}");
            let user = DirectoryUser {
                username: username.clone(),
                roles: vec![],
                groups: vec![],
                name: None,
                email: None,
                attributes: Default::default(),
            };
            (username, user)
        })
        .collect();
    Arc::new(MemoryDirectory {
        users: Mutex::new(users),
    })
}

async fn run(label: &str, users: usize, accounts: Arc<dyn AccountProvider>) -> (f64, u32) {
    let bucket_config: Arc<dyn BucketConfigSource> =
        Arc::new(FileBucketConfig::fixed("bench", "*,*,*,30,osam-bench\n").expect("valid"));
    let storage = Arc::new(Storage {
        bucket_config,
        accounts,
        marker_template: MarkerTemplate::parse("osam:%keycloak-user%").expect("valid"),
    });
    let settings = SyncSettings {
        link_attribute: "obs-user".into(),
        max_delete_share: DeleteShare::DEFAULT,
        concurrency: CONCURRENCY,
        call_timeout: Duration::from_secs(30),
        call_attempts: 3,
        apply_policies: false,
    };
    let worker = SyncWorker::start(directory(users), storage, settings, None, Leadership::Alone);
    let started = Instant::now();
    let triggered = worker.trigger(false);
    let report = worker.wait_for(triggered.run_id).await.expect("report");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        report.created as usize,
        users,
        "{label}: {:?}",
        report.failures.first()
    );
    println!(
        "{label}: {users} users in {seconds:.2} s = {:.0} users/s",
        users as f64 / seconds
    );
    (seconds, report.created)
}

fn peak_resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let state = tempfile::tempdir().expect("state");
        let embedded: Arc<dyn AccountProvider> = Arc::new(EmbeddedProvider::open(state.path()).expect("provider"));
        run("embedded provider", users, embedded).await;
        println!("peak resident memory so far: {:.0} MiB", peak_resident_mib());

        let latency = Arc::new(LatencyProvider::default());
        let (seconds, _) = run("20 ms latency provider", users, latency.clone()).await;
        let calls = *latency.calls.lock().expect("lock") as f64;
        let bound = CONCURRENCY as f64 * 1000.0 / LATENCY.as_millis() as f64;
        println!(
            "20 ms latency provider: {:.0} provider calls/s, {:.0}% of the bound of {bound:.0} calls/s (concurrency {CONCURRENCY} × 50)",
            calls / seconds,
            100.0 * calls / seconds / bound
        );
        println!("peak resident memory: {:.0} MiB", peak_resident_mib());
    });
}
