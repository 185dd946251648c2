//! The HTTP endpoints: the realm's OpenID Connect endpoints (token, discovery, JWKS) and the
//! slice of the admin REST API osam uses, with Keycloak's status codes and error bodies.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{ClientAuthenticationError, RoleRef, StoredUser};
use crate::representation;
use crate::server::Shared;

/// Keycloak's default page size for user listings.
const DEFAULT_USER_PAGE_SIZE: usize = 100;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let admin = Router::new()
        .route("/admin/realms/{realm}/users", get(list_users))
        .route("/admin/realms/{realm}/users/count", get(count_users))
        .route("/admin/realms/{realm}/users/{id}", get(get_user).put(update_user))
        .route(
            "/admin/realms/{realm}/users/{id}/role-mappings/realm",
            get(direct_realm_roles),
        )
        .route(
            "/admin/realms/{realm}/users/{id}/role-mappings/realm/composite",
            get(effective_realm_roles),
        )
        .route(
            "/admin/realms/{realm}/users/{id}/role-mappings/clients/{client}/composite",
            get(effective_client_roles),
        )
        .route("/admin/realms/{realm}/users/{id}/groups", get(user_groups))
        .route(
            "/admin/realms/{realm}/users/{id}/groups/count",
            get(user_group_count),
        )
        .route("/admin/realms/{realm}/clients", get(list_clients))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_admin_token,
        ));
    Router::new()
        .route("/realms/{realm}/protocol/openid-connect/token", post(token))
        .route("/realms/{realm}/.well-known/openid-configuration", get(discovery))
        .route("/realms/{realm}/protocol/openid-connect/certs", get(certs))
        .merge(admin)
        .fallback(not_found)
        .with_state(shared)
}

/// An error answered with Keycloak's JSON shape.
pub(crate) struct ErrorReply {
    status: StatusCode,
    body: Value,
}

impl ErrorReply {
    pub(crate) fn new(status: StatusCode, error: &str) -> ErrorReply {
        ErrorReply {
            status,
            body: json!({ "error": error }),
        }
    }

    pub(crate) fn described(status: StatusCode, error: &str, description: &str) -> ErrorReply {
        ErrorReply {
            status,
            body: json!({ "error": error, "error_description": description }),
        }
    }

    fn realm_not_found() -> ErrorReply {
        ErrorReply::new(StatusCode::NOT_FOUND, "Realm does not exist")
    }

    fn user_not_found() -> ErrorReply {
        ErrorReply::new(StatusCode::NOT_FOUND, "User not found")
    }

    fn bad_request(description: &str) -> ErrorReply {
        ErrorReply::described(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
}

impl IntoResponse for ErrorReply {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type Reply = Result<Response, ErrorReply>;

fn check_realm(shared: &Shared, realm: &str) -> Result<(), ErrorReply> {
    if realm == shared.realm {
        Ok(())
    } else {
        Err(ErrorReply::realm_not_found())
    }
}

async fn not_found() -> ErrorReply {
    ErrorReply::described(
        StatusCode::NOT_FOUND,
        "Unable to find matching target resource method",
        "For more on this error consult the server log.",
    )
}

// ----- OpenID Connect -----

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Reply {
    check_realm(&shared, &realm)?;
    let Form(form) = form.map_err(|rejection| ErrorReply::bad_request(&rejection.body_text()))?;
    let grant_type = form.grant_type.as_deref().ok_or_else(|| {
        ErrorReply::described(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing form parameter: grant_type",
        )
    })?;
    if grant_type != "client_credentials" {
        return Err(ErrorReply::described(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant_type",
        ));
    }
    let (client_id, client_secret) = match basic_credentials(&headers) {
        Some(credentials) => credentials,
        None => (
            form.client_id.unwrap_or_default(),
            form.client_secret.unwrap_or_default(),
        ),
    };
    let (access_token, lifetime) = {
        let mut state = shared.state();
        match state.authenticate_client(&client_id, &client_secret) {
            Ok(()) => state.issue_admin_token(),
            Err(ClientAuthenticationError::UnknownClient | ClientAuthenticationError::WrongSecret) => {
                return Err(ErrorReply::described(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_client",
                    "Invalid client or Invalid client credentials",
                ));
            }
        }
    };
    let body = json!({
        "access_token": access_token,
        "expires_in": lifetime.as_secs(),
        "refresh_expires_in": 0,
        "token_type": "Bearer",
        "not-before-policy": 0,
        "scope": "profile email",
    });
    let mut response = Json(body).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `Authorization: Basic base64(client_id:client_secret)`, when present and well formed.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (client_id, secret) = text.split_once(':')?;
    Some((form_url_decode(client_id)?, form_url_decode(secret)?))
}

/// RFC 6749 section 2.3.1 form-urlencodes the client id and secret before the Basic encoding;
/// Keycloak decodes them, so the fake does too.
fn form_url_decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let high = char::from(input.next()?).to_digit(16)?;
                let low = char::from(input.next()?).to_digit(16)?;
                bytes.push(u8::try_from(high * 16 + low).ok()?);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

async fn discovery(State(shared): State<Arc<Shared>>, Path(realm): Path<String>) -> Reply {
    check_realm(&shared, &realm)?;
    let issuer = shared.issuer();
    let openid = format!("{issuer}/protocol/openid-connect");
    Ok(Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{openid}/auth"),
        "token_endpoint": format!("{openid}/token"),
        "introspection_endpoint": format!("{openid}/token/introspect"),
        "userinfo_endpoint": format!("{openid}/userinfo"),
        "end_session_endpoint": format!("{openid}/logout"),
        "jwks_uri": format!("{openid}/certs"),
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "userinfo_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "roles", "offline_access"],
        "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "given_name", "family_name", "preferred_username", "email", "acr"],
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
    .into_response())
}

async fn certs(State(shared): State<Arc<Shared>>, Path(realm): Path<String>) -> Reply {
    check_realm(&shared, &realm)?;
    let keys: Vec<Value> = shared.state().signing_keys().map(|key| key.jwk()).collect();
    Ok(Json(json!({ "keys": keys })).into_response())
}

// ----- admin API -----

/// Admin endpoints need a live admin token, as Keycloak's do; the realm is checked after.
async fn require_admin_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let authorised = bearer.is_some_and(|token| shared.state().admin_token_is_valid(token));
    if !authorised {
        let mut response = ErrorReply::new(StatusCode::UNAUTHORIZED, "HTTP 401 Unauthorized").into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let realm_in_path = request.uri().path().split('/').nth(3).unwrap_or_default();
    if realm_in_path != shared.realm {
        return ErrorReply::realm_not_found().into_response();
    }
    next.run(request).await
}

fn parsed_query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ErrorReply> {
    query
        .map(|Query(query)| query)
        .map_err(|rejection| ErrorReply::bad_request(&rejection.body_text()))
}

/// Keycloak's `first`/`max` paging: negative `first` means 0, negative `max` means no limit.
fn page<T>(items: Vec<T>, first: Option<i64>, max: Option<i64>, default_max: Option<usize>) -> Vec<T> {
    let skip = usize::try_from(first.unwrap_or(0)).unwrap_or(0);
    let take = match max {
        Some(max) => usize::try_from(max).unwrap_or(usize::MAX),
        None => default_max.unwrap_or(usize::MAX),
    };
    items.into_iter().skip(skip).take(take).collect()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UserSearch {
    first: Option<i64>,
    max: Option<i64>,
    brief_representation: Option<bool>,
    username: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    exact: Option<bool>,
    search: Option<String>,
    enabled: Option<bool>,
    email_verified: Option<bool>,
    q: Option<String>,
}

impl UserSearch {
    fn matches(&self, user: &StoredUser) -> bool {
        let exact = self.exact.unwrap_or(false);
        field_matches(self.username.as_deref(), Some(&user.username), exact)
            && field_matches(self.email.as_deref(), user.email.as_deref(), exact)
            && field_matches(self.first_name.as_deref(), user.first_name.as_deref(), exact)
            && field_matches(self.last_name.as_deref(), user.last_name.as_deref(), exact)
            && self.enabled.is_none_or(|enabled| user.enabled == enabled)
            && self
                .email_verified
                .is_none_or(|verified| user.email_verified == verified)
            && self
                .search
                .as_deref()
                .is_none_or(|search| search_matches(search, user))
            && self
                .q
                .as_deref()
                .is_none_or(|query| attribute_query_matches(query, user))
    }
}

/// A field filter: case-insensitive, exact or substring ("like %value%") as in Keycloak.
fn field_matches(filter: Option<&str>, value: Option<&str>, exact: bool) -> bool {
    let Some(filter) = filter else { return true };
    let Some(value) = value else { return false };
    let (filter, value) = (filter.to_lowercase(), value.to_lowercase());
    if exact {
        value == filter
    } else {
        value.contains(&filter)
    }
}

/// Keycloak's `search`: over username, email, first and last name; prefix by default,
/// `*foo*` for infix, `"foo"` for exact, case-insensitive.
fn search_matches(search: &str, user: &StoredUser) -> bool {
    let search = search.trim().to_lowercase();
    let candidates = [
        Some(user.username.as_str()),
        user.email.as_deref(),
        user.first_name.as_deref(),
        user.last_name.as_deref(),
    ];
    let candidates = candidates.into_iter().flatten().map(str::to_lowercase);
    if search.len() >= 2 && search.starts_with('"') && search.ends_with('"') {
        let exact = &search[1..search.len() - 1];
        return candidates.into_iter().any(|candidate| candidate == exact);
    }
    let infix = search.starts_with('*');
    let needle = search.trim_matches('*').to_owned();
    candidates.into_iter().any(|candidate| {
        if infix {
            candidate.contains(&needle)
        } else {
            candidate.starts_with(&needle)
        }
    })
}

/// Keycloak's `q=key1:value1 key2:value2` attribute search: every pair must match a value.
fn attribute_query_matches(query: &str, user: &StoredUser) -> bool {
    query.split_whitespace().all(|pair| {
        let (key, value) = pair.split_once(':').unwrap_or((pair, ""));
        user.attributes
            .get(key)
            .is_some_and(|values| values.iter().any(|candidate| candidate == value))
    })
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<UserSearch>, QueryRejection>,
) -> Reply {
    let search = parsed_query(query)?;
    let brief = search.brief_representation.unwrap_or(false);
    let users: Vec<Value> = {
        let state = shared.state();
        let matching: Vec<&StoredUser> = state.users().filter(|user| search.matches(user)).collect();
        page(matching, search.first, search.max, Some(DEFAULT_USER_PAGE_SIZE))
            .into_iter()
            .map(|user| representation::user(user, brief))
            .collect()
    };
    Ok(Json(users).into_response())
}

async fn count_users(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<UserSearch>, QueryRejection>,
) -> Reply {
    let search = parsed_query(query)?;
    let count = shared.state().users().filter(|user| search.matches(user)).count();
    Ok(Json(count).into_response())
}

async fn get_user(State(shared): State<Arc<Shared>>, Path((_realm, id)): Path<(String, String)>) -> Reply {
    let state = shared.state();
    let user = state.user_by_id(&id).ok_or_else(ErrorReply::user_not_found)?;
    Ok(Json(representation::user(user, false)).into_response())
}

/// The fields of a `UserRepresentation` a PUT may change; absent or null fields are kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserUpdate {
    username: Option<String>,
    enabled: Option<bool>,
    email: Option<String>,
    email_verified: Option<bool>,
    first_name: Option<String>,
    last_name: Option<String>,
    attributes: Option<BTreeMap<String, Vec<String>>>,
}

async fn update_user(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id)): Path<(String, String)>,
    body: Result<Json<UserUpdate>, JsonRejection>,
) -> Reply {
    let Json(update) = body.map_err(|rejection| {
        ErrorReply::described(
            StatusCode::BAD_REQUEST,
            "Cannot parse the JSON",
            &rejection.body_text(),
        )
    })?;
    let mut state = shared.state();
    let user = state.user_by_id_mut(&id).ok_or_else(ErrorReply::user_not_found)?;
    let renamed = update
        .username
        .as_deref()
        .is_some_and(|username| !username.eq_ignore_ascii_case(&user.username));
    if renamed {
        // Keycloak realms forbid editing usernames by default.
        return Err(ErrorReply {
            status: StatusCode::BAD_REQUEST,
            body: json!({
                "field": "username",
                "errorMessage": "error-user-attribute-read-only",
                "params": ["username"],
            }),
        });
    }
    let non_empty = |value: String| (!value.is_empty()).then_some(value);
    if let Some(enabled) = update.enabled {
        user.enabled = enabled;
    }
    if let Some(email) = update.email {
        user.email = non_empty(email);
    }
    if let Some(email_verified) = update.email_verified {
        user.email_verified = email_verified;
    }
    if let Some(first_name) = update.first_name {
        user.first_name = non_empty(first_name);
    }
    if let Some(last_name) = update.last_name {
        user.last_name = non_empty(last_name);
    }
    if let Some(attributes) = update.attributes {
        user.attributes = attributes;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn roles_reply(shared: &Shared, id: &str, select: impl Fn(&RoleRef) -> bool, effective: bool) -> Reply {
    let state = shared.state();
    let user = state.user_by_id(id).ok_or_else(ErrorReply::user_not_found)?;
    let roles: Vec<RoleRef> = if effective {
        state.effective_roles(user).into_iter().collect()
    } else {
        let realm = user.realm_roles.iter().cloned().map(RoleRef::Realm);
        realm.chain(user.client_roles.iter().cloned()).collect()
    };
    let representations: Vec<Value> = roles
        .iter()
        .filter(|role| select(role))
        .filter_map(|role| representation::role(&state, role))
        .collect();
    Ok(Json(representations).into_response())
}

async fn direct_realm_roles(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id)): Path<(String, String)>,
) -> Reply {
    roles_reply(&shared, &id, |role| matches!(role, RoleRef::Realm(_)), false)
}

async fn effective_realm_roles(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id)): Path<(String, String)>,
) -> Reply {
    roles_reply(&shared, &id, |role| matches!(role, RoleRef::Realm(_)), true)
}

async fn effective_client_roles(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id, client_uuid)): Path<(String, String, String)>,
) -> Reply {
    let client_id = shared
        .state()
        .client_by_uuid(&client_uuid)
        .map(|client| client.client_id.clone())
        .ok_or_else(|| ErrorReply::new(StatusCode::NOT_FOUND, "Could not find client"))?;
    roles_reply(
        &shared,
        &id,
        |role| matches!(role, RoleRef::Client { client_id: owner, .. } if *owner == client_id),
        true,
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GroupSearch {
    first: Option<i64>,
    max: Option<i64>,
    brief_representation: Option<bool>,
    search: Option<String>,
}

fn user_group_ids(
    shared: &Shared,
    id: &str,
    search: &GroupSearch,
) -> Result<Vec<(String, String)>, ErrorReply> {
    let state = shared.state();
    let user = state.user_by_id(id).ok_or_else(ErrorReply::user_not_found)?;
    let needle = search.search.as_deref().map(str::to_lowercase);
    let mut groups: Vec<(String, String)> = user
        .group_ids
        .iter()
        .filter_map(|group_id| state.group(group_id))
        .filter(|group| {
            needle
                .as_deref()
                .is_none_or(|needle| group.name.to_lowercase().contains(needle))
        })
        .map(|group| (state.group_path(&group.id), group.id.clone()))
        .collect();
    groups.sort();
    Ok(groups)
}

async fn user_groups(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id)): Path<(String, String)>,
    query: Result<Query<GroupSearch>, QueryRejection>,
) -> Reply {
    let search = parsed_query(query)?;
    let brief = search.brief_representation.unwrap_or(true);
    let ordered = user_group_ids(&shared, &id, &search)?;
    let paged = page(ordered, search.first, search.max, None);
    let state = shared.state();
    let groups: Vec<Value> = paged
        .iter()
        .filter_map(|(_, group_id)| state.group(group_id))
        .map(|group| representation::group(&state, group, brief))
        .collect();
    Ok(Json(groups).into_response())
}

async fn user_group_count(
    State(shared): State<Arc<Shared>>,
    Path((_realm, id)): Path<(String, String)>,
    query: Result<Query<GroupSearch>, QueryRejection>,
) -> Reply {
    let search = parsed_query(query)?;
    let count = user_group_ids(&shared, &id, &search)?.len();
    Ok(Json(json!({ "count": count })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ClientSearch {
    client_id: Option<String>,
    search: Option<bool>,
    first: Option<i64>,
    max: Option<i64>,
}

/// `clientId` matches exactly, or as a case-insensitive substring with `search=true`.
async fn list_clients(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<ClientSearch>, QueryRejection>,
) -> Reply {
    let search = parsed_query(query)?;
    let substring = search.search.unwrap_or(false);
    let state = shared.state();
    let matching: Vec<Value> = state
        .clients()
        .filter(|client| match search.client_id.as_deref() {
            None => true,
            Some(wanted) if substring => client.client_id.to_lowercase().contains(&wanted.to_lowercase()),
            Some(wanted) => client.client_id == wanted,
        })
        .map(representation::client)
        .collect();
    Ok(Json(page(matching, search.first, search.max, None)).into_response())
}
