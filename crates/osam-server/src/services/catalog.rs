//! CatalogAuthz: Check, BatchCheck and ListGrants over the domain's catalog decision.

use std::collections::HashMap;
use std::sync::Arc;

use osam_policy::{
    AccessList, CatalogAction, CatalogPolicy, CatalogRequest, Decision, GroupPath, Principal, Reason,
    ResourceAttributes,
};
use osam_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::caller_of;
use crate::audit::{Audit, CallContext, DecisionRecord};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::identity::Identity;
use crate::metrics::metrics;
use crate::paging::{Page, binding_of};

/// The scope that allows checking a subject other than the caller.
pub const CHECK_ANY_SCOPE: &str = "catalog:check:any";

pub struct CatalogAuthzService {
    policy: CatalogPolicy,
    identity: Arc<Identity>,
    max_batch_size: usize,
    audit: Audit,
}

impl CatalogAuthzService {
    pub fn new(
        policy: CatalogPolicy,
        identity: Arc<Identity>,
        max_batch_size: usize,
        audit: Audit,
    ) -> CatalogAuthzService {
        CatalogAuthzService {
            policy,
            identity,
            max_batch_size,
            audit,
        }
    }

    /// Records a decision in the metrics and the audit log.
    fn record(&self, call: &CallContext<'_>, check: &pb::CheckRequest, response: &pb::CheckResponse) {
        let metrics = metrics();
        if response.decisions.is_empty() {
            // Not explained: no reason per collection, one count per collection all the same.
            for _ in &check.collections {
                metrics.record_decision(response.allowed, "unexplained");
            }
        }
        let mut reasons = String::new();
        for decision in &response.decisions {
            let kind = decision
                .reason
                .as_ref()
                .and_then(|reason| pb::ReasonKind::try_from(reason.kind).ok())
                .map_or("unknown", |kind| kind.as_str_name());
            metrics.record_decision(decision.allowed, kind);
            if !reasons.is_empty() {
                reasons.push(',');
            }
            reasons.push_str(&decision.collection);
            reasons.push('=');
            reasons.push_str(kind);
        }
        let action =
            pb::CatalogAction::try_from(check.action).map_or("unknown", |action| action.as_str_name());
        self.audit.decision(
            call,
            &DecisionRecord {
                subject: &response.subject,
                owner: &check.owner,
                collections: &check.collections,
                action,
                allowed: response.allowed,
                reasons: &reasons,
            },
        );
    }

    /// Who a request is about: the caller when no subject is given; otherwise, with
    /// `catalog:check:any`, the subject as given or as the directory knows them.
    async fn resolve_subject(
        &self,
        caller: &Caller,
        subject: Option<&pb::Subject>,
        field: &str,
    ) -> Result<Arc<Principal>, ApiError> {
        let Some(subject) = subject else {
            return Ok(caller.principal.clone());
        };
        if subject.username.is_empty() {
            return Err(ApiError::invalid_argument(
                format!("{field}.username"),
                "must not be empty",
            ));
        }
        let explicit = subject.as_given || !subject.roles.is_empty() || !subject.groups.is_empty();
        if !explicit && subject.username == caller.principal.username() {
            return Ok(caller.principal.clone());
        }
        if !caller.principal.has_scope(CHECK_ANY_SCOPE) {
            return Err(ApiError::SubjectNotAllowed);
        }
        if explicit {
            let groups = parse_groups(&subject.groups, &format!("{field}.groups"))?;
            return Ok(self
                .identity
                .principal(&subject.username, &subject.roles, &groups));
        }
        let user = self.identity.find_user(&subject.username).await?;
        Ok(self.identity.principal_of(&user))
    }

    fn decide(
        &self,
        subject: &Principal,
        check: &pb::CheckRequest,
        field: &str,
    ) -> Result<pb::CheckResponse, ApiError> {
        let action = parse_action(check.action, &format!("{field}.action"))?;
        let resource = check
            .resource
            .as_ref()
            .map(|resource| parse_resource(resource, &format!("{field}.resource")))
            .transpose()?;
        let request = CatalogRequest {
            owner: &check.owner,
            collections: &check.collections,
            action,
            owner_prefix: check.owner_prefix,
            resource: resource.as_ref(),
        };
        let decision = self.policy.decide(subject, &request, check.explain);
        Ok(to_check_response(subject, &check.collections, decision))
    }
}

#[tonic::async_trait]
impl pb::catalog_authz_server::CatalogAuthz for CatalogAuthzService {
    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let caller = caller_of(&request)?;
        let (_, extensions, check) = request.into_parts();
        let subject = self
            .resolve_subject(&caller, check.subject.as_ref(), "subject")
            .await?;
        let response = self.decide(&subject, &check, "check")?;
        self.record(&CallContext::of(&extensions, &caller), &check, &response);
        Ok(Response::new(response))
    }

    async fn batch_check(
        &self,
        request: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        let caller = caller_of(&request)?;
        let (_, extensions, batch) = request.into_parts();
        let call = CallContext::of(&extensions, &caller);
        if batch.items.len() > self.max_batch_size {
            return Err(ApiError::BatchTooLarge {
                size: batch.items.len(),
                max: self.max_batch_size,
            }
            .into());
        }
        // Items of a batch usually share a few subjects: resolve each distinct one once.
        let mut subjects: HashMap<SubjectKey, Result<Arc<Principal>, ApiError>> = HashMap::new();
        let mut results = Vec::with_capacity(batch.items.len());
        for (position, item) in batch.items.iter().enumerate() {
            let field = format!("items[{position}]");
            let outcome = match &item.check {
                None => Err(ApiError::invalid_argument(
                    format!("{field}.check"),
                    "is required",
                )),
                Some(check) => {
                    let key = SubjectKey::of(check.subject.as_ref());
                    let subject = match subjects.get(&key) {
                        Some(resolved) => resolved.clone(),
                        None => {
                            let resolved = self
                                .resolve_subject(
                                    &caller,
                                    check.subject.as_ref(),
                                    &format!("{field}.check.subject"),
                                )
                                .await;
                            subjects.insert(key, resolved.clone());
                            resolved
                        }
                    };
                    let decided =
                        subject.and_then(|subject| self.decide(&subject, check, &format!("{field}.check")));
                    if let Ok(response) = &decided {
                        self.record(&call, check, response);
                    }
                    decided
                }
            };
            let outcome = match outcome {
                Ok(response) => pb::batch_check_result::Outcome::Response(response),
                Err(error) => pb::batch_check_result::Outcome::Error(pb::CheckError {
                    code: error.code() as i32,
                    reason: error.reason().to_owned(),
                    message: error.to_string(),
                }),
            };
            results.push(pb::BatchCheckResult {
                correlation_id: item.correlation_id.clone(),
                outcome: Some(outcome),
            });
        }
        Ok(Response::new(pb::BatchCheckResponse { results }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let caller = caller_of(&request)?;
        let list_request = request.into_inner();
        let subject = self
            .resolve_subject(&caller, list_request.subject.as_ref(), "subject")
            .await?;
        let page_request = list_request.page.unwrap_or_default();
        let roles: Vec<&str> = subject.roles().iter().map(String::as_str).collect();
        let binding = binding_of(&[&[subject.username()], roles.as_slice()].concat());
        let page = Page::parse(page_request.page_size, &page_request.page_token, binding)?;

        let owner_grants = CatalogAction::ALL.into_iter().map(|action| pb::Grant {
            owner: subject.username().to_owned(),
            collection: "*".to_owned(),
            action: to_proto_action(action) as i32,
            source: "owner".to_owned(),
        });
        let admin_grants = self.policy.admin_role_of(&subject).into_iter().flat_map(|role| {
            CatalogAction::ALL.into_iter().map(move |action| pb::Grant {
                owner: "*".to_owned(),
                collection: "*".to_owned(),
                action: to_proto_action(action) as i32,
                source: role.to_owned(),
            })
        });
        let role_grants = subject.grants().list().into_iter().map(|grant| pb::Grant {
            owner: grant.owner.to_owned(),
            collection: grant.collection.to_owned(),
            action: to_proto_action(grant.action) as i32,
            source: grant.role.to_owned(),
        });
        let mut grants: Vec<pb::Grant> = owner_grants.chain(admin_grants).chain(role_grants).collect();
        grants.sort_by(|left, right| {
            (&left.owner, &left.collection, left.action).cmp(&(&right.owner, &right.collection, right.action))
        });
        let (page_grants, next_page_token) = page.slice(&grants, binding);
        Ok(Response::new(pb::ListGrantsResponse {
            grants: page_grants.to_vec(),
            next_page_token,
            total_size: i32::try_from(grants.len()).unwrap_or(i32::MAX),
        }))
    }
}

/// The identity of a request's subject, for reuse within a batch.
#[derive(Hash, PartialEq, Eq)]
struct SubjectKey(Option<(String, Vec<String>, Vec<String>, bool)>);

impl SubjectKey {
    fn of(subject: Option<&pb::Subject>) -> SubjectKey {
        SubjectKey(subject.map(|subject| {
            (
                subject.username.clone(),
                subject.roles.clone(),
                subject.groups.clone(),
                subject.as_given,
            )
        }))
    }
}

fn parse_action(action: i32, field: &str) -> Result<CatalogAction, ApiError> {
    match pb::CatalogAction::try_from(action) {
        Ok(pb::CatalogAction::Read) => Ok(CatalogAction::Read),
        Ok(pb::CatalogAction::Write) => Ok(CatalogAction::Write),
        Ok(pb::CatalogAction::Download) => Ok(CatalogAction::Download),
        Ok(pb::CatalogAction::Unspecified) | Err(_) => Err(ApiError::invalid_argument(
            field,
            "must be CATALOG_ACTION_READ, CATALOG_ACTION_WRITE or CATALOG_ACTION_DOWNLOAD",
        )),
    }
}

fn to_proto_action(action: CatalogAction) -> pb::CatalogAction {
    match action {
        CatalogAction::Read => pb::CatalogAction::Read,
        CatalogAction::Write => pb::CatalogAction::Write,
        CatalogAction::Download => pb::CatalogAction::Download,
    }
}

fn parse_groups(groups: &[String], field: &str) -> Result<Vec<GroupPath>, ApiError> {
    groups
        .iter()
        .enumerate()
        .map(|(position, group)| {
            GroupPath::parse(group).map_err(|error| {
                ApiError::invalid_argument(format!("{field}[{position}]"), error.to_string())
            })
        })
        .collect()
}

fn parse_resource(resource: &pb::ResourceAttributes, field: &str) -> Result<ResourceAttributes, ApiError> {
    let download = resource
        .download
        .as_ref()
        .map(|download| {
            Ok::<_, ApiError>(AccessList {
                groups: parse_groups(&download.groups, &format!("{field}.download.groups"))?,
                users: download.users.clone(),
            })
        })
        .transpose()?;
    Ok(ResourceAttributes {
        read: AccessList {
            groups: parse_groups(&resource.read_groups, &format!("{field}.read_groups"))?,
            users: resource.read_users.clone(),
        },
        write: AccessList {
            groups: parse_groups(&resource.write_groups, &format!("{field}.write_groups"))?,
            users: resource.write_users.clone(),
        },
        download,
        public_read: resource.public_read,
    })
}

fn to_check_response(
    subject: &Principal,
    collections: &[String],
    decision: Decision<'_>,
) -> pb::CheckResponse {
    let decisions = collections
        .iter()
        .zip(decision.collections)
        .map(|(collection, collection_decision)| {
            let (kind, detail) = match collection_decision.reason {
                Reason::Owner => (pb::ReasonKind::Owner, String::new()),
                Reason::CatalogRole(role) => (pb::ReasonKind::CatalogRole, role.to_owned()),
                Reason::ResourceGroup(group) => (pb::ReasonKind::ResourceGroup, group.to_string()),
                Reason::ResourceUser(user) => (pb::ReasonKind::ResourceUser, user.to_owned()),
                Reason::PublicRead => (pb::ReasonKind::PublicRead, String::new()),
                Reason::AdminRole(role) => (pb::ReasonKind::AdminRole, role.to_owned()),
                Reason::NoGrant => (pb::ReasonKind::NoGrant, String::new()),
            };
            pb::CollectionDecision {
                collection: collection.clone(),
                allowed: collection_decision.allowed,
                reason: Some(pb::DecisionReason {
                    kind: kind as i32,
                    detail,
                }),
            }
        })
        .collect();
    pb::CheckResponse {
        allowed: decision.allowed,
        decisions,
        subject: subject.username().to_owned(),
    }
}
