//! AccountService: every method answers UNIMPLEMENTED, naming what is missing, until the account
//! providers, the sync and the bucket configuration land.

use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::ApiError;

pub struct AccountService;

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
        Err(ApiError::NotImplemented(
            "AccountService.GetStorageConfiguration (the bucket configuration sources)",
        )
        .into())
    }
}
