//! RightsService: who users are (GetUserInfo, WhoAmI). The S3 rights methods answer
//! UNIMPLEMENTED until the S3 rights work lands.

use std::sync::Arc;

use osam_policy::{Principal, displayed_name};
use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::caller_of;
use crate::error::ApiError;
use crate::identity::Identity;

pub struct RightsService {
    identity: Arc<Identity>,
}

impl RightsService {
    pub fn new(identity: Arc<Identity>) -> RightsService {
        RightsService { identity }
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
        _: Request<pb::GetUserRightsRequest>,
    ) -> Result<Response<pb::GetUserRightsResponse>, Status> {
        Err(ApiError::NotImplemented("RightsService.GetUserRights (S3 rights lists and policy documents from the bucket configuration)").into())
    }

    async fn apply_user_rights(
        &self,
        _: Request<pb::ApplyUserRightsRequest>,
    ) -> Result<Response<pb::ApplyUserRightsResponse>, Status> {
        Err(ApiError::NotImplemented(
            "RightsService.ApplyUserRights (S3 policy documents applied through an account provider)",
        )
        .into())
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> Result<Response<pb::GetUserInfoResponse>, Status> {
        let username = request.into_inner().username;
        if username.is_empty() {
            return Err(ApiError::invalid_argument("username", "must not be empty").into());
        }
        let user = self.identity.find_user(&username).await?;
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
