//! AccountService: the account sync (trigger, dry run, wait, status), the list of users and their
//! accounts, each user's own credentials, and the bucket configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osam_policy::accounts::AccountCredentials;
use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::caller_of;
use crate::audit::{self, CallContext};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::paging::{Page, binding_of};
use crate::storage::{Storage, provider_error};
use crate::sync::{RunReport, RunState, SyncWorker};

/// Where users' S3 credentials point, returned with them.
#[derive(Debug, Clone)]
pub struct CredentialsEndpoint {
    pub endpoint: String,
    pub region: String,
}

pub struct AccountService {
    identity: Arc<Identity>,
    storage: Arc<Storage>,
    sync: Arc<SyncWorker>,
    link_attribute: String,
    endpoint: CredentialsEndpoint,
    credentials_ttl: Duration,
    /// Credentials by username, with when they were fetched and the account they belong to.
    credentials: Mutex<HashMap<String, (Instant, String, AccountCredentials)>>,
}

impl AccountService {
    pub fn new(
        identity: Arc<Identity>,
        storage: Arc<Storage>,
        sync: Arc<SyncWorker>,
        link_attribute: String,
        endpoint: CredentialsEndpoint,
        credentials_ttl: Duration,
    ) -> AccountService {
        AccountService {
            identity,
            storage,
            sync,
            link_attribute,
            endpoint,
            credentials_ttl,
            credentials: Mutex::new(HashMap::new()),
        }
    }

    fn cached_credentials(&self, username: &str) -> Option<(String, AccountCredentials)> {
        let cache = self
            .credentials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (fetched, account_id, credentials) = cache.get(username)?;
        (fetched.elapsed() < self.credentials_ttl).then(|| (account_id.clone(), credentials.clone()))
    }
}

fn to_proto_run(report: &RunReport) -> pb::SyncRun {
    let state = match report.state {
        RunState::Running => pb::SyncState::Running,
        RunState::Finished => pb::SyncState::Finished,
        RunState::Refused => pb::SyncState::Refused,
        RunState::Failed => pb::SyncState::Failed,
    };
    pb::SyncRun {
        state: state as i32,
        triggered_at: Some(prost_types::Timestamp::from(report.triggered_at)),
        duration: prost_types::Duration::try_from(report.duration).ok(),
        created: report.created as i32,
        deleted: report.deleted as i32,
        relinked: report.relinked as i32,
        kept: report.kept as i32,
        policies_applied: report.policies_applied as i32,
        failures: report
            .failures
            .iter()
            .map(|failure| pb::SyncFailure {
                subject: failure.subject.clone(),
                step: failure.step.to_owned(),
                message: failure.message.clone(),
            })
            .collect(),
        refusal: report.refusal.clone().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::account_service_server::AccountService for AccountService {
    async fn sync_accounts(
        &self,
        request: Request<pb::SyncAccountsRequest>,
    ) -> Result<Response<pb::SyncAccountsResponse>, Status> {
        let caller = caller_of(&request)?;
        let (_, extensions, request) = request.into_parts();
        if request.dry_run {
            let (plan, refusal) = self
                .sync
                .dry_run()
                .await
                .map_err(ApiError::DirectoryUnavailable)?;
            let plan = pb::SyncPlan {
                create: plan.create().to_vec(),
                delete: plan.delete().to_vec(),
                relink: plan.relink().iter().map(|link| link.username.clone()).collect(),
                keep: plan.keep().len() as i32,
                refusal: refusal.unwrap_or_default(),
            };
            return Ok(Response::new(pb::SyncAccountsResponse {
                plan: Some(plan),
                run: None,
                coalesced: false,
            }));
        }
        if !self.sync.is_leader() {
            return Err(ApiError::NotSyncLeader.into());
        }
        let triggered = self.sync.trigger(request.force);
        let call = CallContext::of(&extensions, &caller);
        let outcome = if triggered.coalesced {
            "coalesced"
        } else {
            "queued"
        };
        let detail = format!("run {}, force {}", triggered.run_id, request.force);
        audit::state_change(Some(&call), "sync_requested", "", outcome, &detail);
        let run = if request.wait {
            // A replica that loses the lease before the run starts would never run it.
            let report = tokio::select! {
                biased;
                report = self.sync.wait_for(triggered.run_id) => report,
                () = self.sync.until_not_leader() => return Err(ApiError::NotSyncLeader.into()),
            };
            report.as_ref().map(to_proto_run)
        } else {
            None
        };
        Ok(Response::new(pb::SyncAccountsResponse {
            plan: None,
            run,
            coalesced: triggered.coalesced,
        }))
    }

    async fn get_sync_status(
        &self,
        _: Request<pb::GetSyncStatusRequest>,
    ) -> Result<Response<pb::GetSyncStatusResponse>, Status> {
        let (current, last) = self.sync.status();
        Ok(Response::new(pb::GetSyncStatusResponse {
            current: current.as_ref().map(to_proto_run),
            last: last.as_ref().map(to_proto_run),
        }))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let page_request = request.into_inner().page.unwrap_or_default();
        let binding = binding_of(&["list-accounts"]);
        let page = Page::parse(page_request.page_size, &page_request.page_token, binding)?;
        let users = self.identity.list_users().await?;
        let accounts = self
            .storage
            .accounts
            .list_accounts()
            .await
            .map_err(provider_error)?;
        let keys: HashMap<&str, &str> = accounts
            .iter()
            .map(|account| (account.id.as_str(), account.access_key_id.as_str()))
            .collect();
        let entries: Vec<pb::AccountEntry> = users
            .iter()
            .map(|user| {
                let account_id = user
                    .attribute(&self.link_attribute)
                    .unwrap_or_default()
                    .to_owned();
                let access_key_id = keys
                    .get(account_id.as_str())
                    .copied()
                    .unwrap_or_default()
                    .to_owned();
                pb::AccountEntry {
                    username: user.username.clone(),
                    account_id,
                    access_key_id,
                }
            })
            .collect();
        let (slice, next_page_token) = page.slice(&entries, binding);
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: slice.to_vec(),
            next_page_token,
        }))
    }

    async fn get_my_credentials(
        &self,
        request: Request<pb::GetMyCredentialsRequest>,
    ) -> Result<Response<pb::GetMyCredentialsResponse>, Status> {
        let caller = caller_of(&request)?;
        let username = caller.principal.username().to_owned();
        let (account_id, credentials) = match self.cached_credentials(&username) {
            Some(cached) => cached,
            None => {
                let account_id = self.storage.account_of(&username).await?;
                let credentials = self
                    .storage
                    .accounts
                    .credentials(&account_id)
                    .await
                    .map_err(provider_error)?;
                let mut cache = self
                    .credentials
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                cache.insert(
                    username.clone(),
                    (Instant::now(), account_id.clone(), credentials.clone()),
                );
                (account_id, credentials)
            }
        };
        tracing::info!(user = %username, account = %account_id, "credentials served");
        Ok(Response::new(pb::GetMyCredentialsResponse {
            access_key_id: credentials.access_key_id,
            secret_access_key: credentials.secret_access_key.expose().to_owned(),
            endpoint: self.endpoint.endpoint.clone(),
            region: self.endpoint.region.clone(),
            account_id,
        }))
    }

    async fn get_storage_configuration(
        &self,
        _: Request<pb::GetStorageConfigurationRequest>,
    ) -> Result<Response<pb::GetStorageConfigurationResponse>, Status> {
        let origin = self.storage.bucket_config.origin();
        let config = self
            .storage
            .bucket_config
            .current()
            .ok_or_else(|| ApiError::NoBucketConfig(origin.clone()))?;
        let rules = config
            .rules()
            .iter()
            .map(|rule| pb::BucketRule {
                owner: rule.owner.as_str().to_owned(),
                collection: rule.collection.as_str().to_owned(),
                product_type: rule.product_type.as_str().to_owned(),
                expiration_days: rule.expiration_days,
                bucket: rule.bucket.as_str().to_owned(),
            })
            .collect();
        Ok(Response::new(pb::GetStorageConfigurationResponse {
            rules,
            source: origin,
        }))
    }
}
