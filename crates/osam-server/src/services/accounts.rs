//! AccountService: the bucket configuration (GetStorageConfiguration). The sync, the account list
//! and users' credentials answer UNIMPLEMENTED, naming what is missing, until they land.

use std::sync::Arc;

use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::storage::Storage;

pub struct AccountService {
    storage: Arc<Storage>,
}

impl AccountService {
    pub fn new(storage: Arc<Storage>) -> AccountService {
        AccountService { storage }
    }
}

#[tonic::async_trait]
impl pb::account_service_server::AccountService for AccountService {
    async fn sync_accounts(
        &self,
        _: Request<pb::SyncAccountsRequest>,
    ) -> Result<Response<pb::SyncAccountsResponse>, Status> {
        Err(
            ApiError::NotImplemented("AccountService.SyncAccounts (account providers and the account sync)")
                .into(),
        )
    }

    async fn get_sync_status(
        &self,
        _: Request<pb::GetSyncStatusRequest>,
    ) -> Result<Response<pb::GetSyncStatusResponse>, Status> {
        Err(ApiError::NotImplemented("AccountService.GetSyncStatus (the account sync)").into())
    }

    async fn list_accounts(
        &self,
        _: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        Err(ApiError::NotImplemented("AccountService.ListAccounts (account providers)").into())
    }

    async fn get_my_credentials(
        &self,
        _: Request<pb::GetMyCredentialsRequest>,
    ) -> Result<Response<pb::GetMyCredentialsResponse>, Status> {
        Err(ApiError::NotImplemented(
            "AccountService.GetMyCredentials (account providers and sealed secrets)",
        )
        .into())
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
