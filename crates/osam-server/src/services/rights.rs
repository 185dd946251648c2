//! RightsService: who users are (GetUserInfo, WhoAmI) and what S3 rights their catalog roles
//! give (GetUserRights computes them, ApplyUserRights writes them to the user's account).

use std::sync::Arc;

use osam_policy::s3_rights::RightsLevel;
use osam_policy::{Principal, displayed_name};
use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::caller_of;
use crate::audit::{self, CallContext};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::storage::{Storage, provider_error};

pub struct RightsService {
    identity: Arc<Identity>,
    storage: Arc<Storage>,
}

impl RightsService {
    pub fn new(identity: Arc<Identity>, storage: Arc<Storage>) -> RightsService {
        RightsService { identity, storage }
    }

    async fn directory_user(&self, username: &str) -> Result<osam_policy::DirectoryUser, ApiError> {
        if username.is_empty() {
            return Err(ApiError::invalid_argument("username", "must not be empty"));
        }
        self.identity.find_user(username).await
    }
}

fn user_info(principal: &Principal, name: Option<&str>, email: Option<&str>) -> pb::UserInfo {
    pb::UserInfo {
        username: principal.username().to_owned(),
        displayed_name: displayed_name(principal.username(), name, email),
        email: email.unwrap_or_default().to_owned(),
        roles: principal.roles().iter().cloned().collect(),
        scopes: principal.scopes().iter().cloned().collect(),
        groups: principal.groups().iter().map(ToString::to_string).collect(),
    }
}

#[tonic::async_trait]
impl pb::rights_service_server::RightsService for RightsService {
    async fn get_user_rights(
        &self,
        request: Request<pb::GetUserRightsRequest>,
    ) -> Result<Response<pb::GetUserRightsResponse>, Status> {
        let user = self.directory_user(&request.into_inner().username).await?;
        let computed = self.storage.rights_of(&user)?;
        Ok(Response::new(pb::GetUserRightsResponse {
            read: computed.rights.level_strings(RightsLevel::Read),
            read_download: computed.rights.level_strings(RightsLevel::ReadDownload),
            write_download: computed.rights.level_strings(RightsLevel::WriteDownload),
            policy_json: computed.policy_json,
            not_enforceable: computed.not_enforceable,
        }))
    }

    async fn apply_user_rights(
        &self,
        request: Request<pb::ApplyUserRightsRequest>,
    ) -> Result<Response<pb::ApplyUserRightsResponse>, Status> {
        let caller = caller_of(&request)?;
        let (_, extensions, request) = request.into_parts();
        let user = self.directory_user(&request.username).await?;
        let computed = self.storage.rights_of(&user)?;
        let account_id = self.storage.account_of(&user.username).await?;
        let accounts = &self.storage.accounts;
        let applied = if computed.grants_nothing {
            accounts.remove_policy(&account_id).await
        } else {
            accounts.apply_policy(&account_id, &computed.policy_json).await
        };
        audit::policy_change(
            Some(&CallContext::of(&extensions, &caller)),
            &user.username,
            &account_id,
            computed.grants_nothing,
            applied.is_ok(),
        );
        applied.map_err(provider_error)?;
        Ok(Response::new(pb::ApplyUserRightsResponse {
            account_id,
            policy_json: computed.policy_json,
        }))
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> Result<Response<pb::GetUserInfoResponse>, Status> {
        let user = self.directory_user(&request.into_inner().username).await?;
        let principal = self.identity.principal_of(&user);
        let info = user_info(&principal, user.name.as_deref(), user.email.as_deref());
        Ok(Response::new(pb::GetUserInfoResponse { user: Some(info) }))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = caller_of(&request)?;
        let info = user_info(&caller.principal, caller.name.as_deref(), caller.email.as_deref());
        let actor = caller.principal.actor().unwrap_or_default().to_owned();
        Ok(Response::new(pb::WhoAmIResponse {
            user: Some(info),
            actor,
        }))
    }
}
