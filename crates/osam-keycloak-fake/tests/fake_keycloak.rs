//! Drives the fake over real HTTP with reqwest, as osam's Keycloak client will.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use osam_keycloak_fake::{FakeKeycloak, FakeUser};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REALM: &str = "osam";
const CLIENT_ID: &str = "osam-admin";
const CLIENT_SECRET: &str = "s3cret";

async fn fake_with_service_client() -> FakeKeycloak {
    let fake = FakeKeycloak::start(REALM).await;
    fake.add_service_client(CLIENT_ID, CLIENT_SECRET);
    fake
}

fn token_url(fake: &FakeKeycloak) -> String {
    format!("{}/protocol/openid-connect/token", fake.issuer())
}

fn admin_url(fake: &FakeKeycloak, rest: &str) -> String {
    format!("{}/admin/realms/{}{rest}", fake.base_url(), fake.realm())
}

async fn admin_token(fake: &FakeKeycloak) -> String {
    let response: Value = reqwest::Client::new()
        .post(token_url(fake))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    response["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn admin_get(fake: &FakeKeycloak, token: &str, rest: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(admin_url(fake, rest))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn names(values: &Value) -> Vec<String> {
    values
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|value| value["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn client_credentials_with_form_credentials_returns_keycloaks_token_response() {
    let fake = fake_with_service_client().await;
    let response = reqwest::Client::new()
        .post(token_url(&fake))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|token| !token.is_empty())
    );
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 0);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["not-before-policy"], 0);
    assert_eq!(body["scope"], "profile email");
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn client_credentials_with_basic_auth_and_the_configured_lifetime() {
    let fake = fake_with_service_client().await;
    fake.set_admin_token_lifetime(Duration::from_secs(60));
    let body: Value = reqwest::Client::new()
        .post(token_url(&fake))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("json");
    assert_eq!(body["expires_in"], 60);
    let token = body["access_token"].as_str().expect("token");
    let (status, _) = admin_get(&fake, token, "/users/count").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn basic_auth_credentials_are_form_url_decoded_as_rfc_6749_requires() {
    let fake = FakeKeycloak::start(REALM).await;
    fake.add_service_client("svc", "a b%c");
    let response = reqwest::Client::new()
        .post(token_url(&fake))
        .basic_auth("svc", Some("a+b%25c"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_credentials_and_unsupported_grants_are_refused_like_keycloak() {
    let fake = fake_with_service_client().await;
    let client = reqwest::Client::new();
    let wrong_secret = client
        .post(token_url(&fake))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong_secret.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized_client");
    assert!(body["error_description"].is_string());

    let unknown_client = client
        .post(token_url(&fake))
        .basic_auth("nobody", Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(unknown_client.status(), StatusCode::UNAUTHORIZED);

    let password_grant = client
        .post(token_url(&fake))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(password_grant.status(), StatusCode::BAD_REQUEST);
    let body: Value = password_grant.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn admin_endpoints_refuse_missing_unknown_and_expired_tokens() {
    let fake = fake_with_service_client().await;
    let missing = reqwest::Client::new()
        .get(admin_url(&fake, "/users"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let (unknown, body) = admin_get(&fake, "not-a-token", "/users").await;
    assert_eq!(unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "HTTP 401 Unauthorized");

    let token = admin_token(&fake).await;
    assert_eq!(admin_get(&fake, &token, "/users").await.0, StatusCode::OK);
    fake.expire_admin_tokens();
    assert_eq!(
        admin_get(&fake, &token, "/users").await.0,
        StatusCode::UNAUTHORIZED
    );
    let fresh = admin_token(&fake).await;
    assert_eq!(admin_get(&fake, &fresh, "/users").await.0, StatusCode::OK);
    assert_eq!(fake.admin_requests(), 5);
}

#[tokio::test]
async fn admin_tokens_are_refused_once_their_lifetime_has_passed() {
    let fake = fake_with_service_client().await;
    fake.set_admin_token_lifetime(Duration::from_millis(300));
    let token = admin_token(&fake).await;
    assert_eq!(admin_get(&fake, &token, "/users").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        admin_get(&fake, &token, "/users").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn paging_through_2500_users_returns_every_user_exactly_once_in_username_order() {
    let fake = fake_with_service_client().await;
    let mut expected = BTreeSet::new();
    for index in 0..2500 {
        let username = format!("user-{index:04}");
        fake.add_user(FakeUser::new(&username));
        expected.insert(username);
    }
    let token = admin_token(&fake).await;
    let (_, count) = admin_get(&fake, &token, "/users/count").await;
    assert_eq!(count, 2500);
    let (_, default_page) = admin_get(&fake, &token, "/users").await;
    assert_eq!(
        default_page.as_array().expect("array").len(),
        100,
        "Keycloak's default max"
    );

    let mut seen = Vec::new();
    let page_size = 300;
    loop {
        let rest = format!(
            "/users?first={}&max={page_size}&briefRepresentation=true",
            seen.len()
        );
        let (status, page) = admin_get(&fake, &token, &rest).await;
        assert_eq!(status, StatusCode::OK);
        let page = page.as_array().expect("array").clone();
        for user in &page {
            assert!(user.get("attributes").is_none(), "brief representation");
            seen.push(user["username"].as_str().expect("username").to_owned());
        }
        if page.len() < page_size {
            break;
        }
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 2500);
    assert_eq!(unique, expected);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}

#[tokio::test]
async fn username_search_is_exact_only_when_asked() {
    let fake = fake_with_service_client().await;
    for username in ["ann", "anna", "joanne"] {
        fake.add_user(FakeUser::new(username));
    }
    fake.set_enabled("joanne", false);
    let token = admin_token(&fake).await;
    let usernames = |users: Value| -> Vec<String> {
        users
            .as_array()
            .expect("array")
            .iter()
            .map(|user| user["username"].as_str().expect("username").to_owned())
            .collect()
    };
    let (_, exact) = admin_get(&fake, &token, "/users?username=ANN&exact=true").await;
    assert_eq!(usernames(exact), ["ann"]);
    let (_, substring) = admin_get(&fake, &token, "/users?username=ann").await;
    assert_eq!(usernames(substring), ["ann", "anna", "joanne"]);
    let (_, prefix) = admin_get(&fake, &token, "/users?search=ann").await;
    assert_eq!(usernames(prefix), ["ann", "anna"]);
    let (_, enabled) = admin_get(&fake, &token, "/users?username=ann&enabled=true").await;
    assert_eq!(usernames(enabled), ["ann", "anna"]);
}

#[tokio::test]
async fn effective_realm_roles_include_composites_ancestor_groups_and_default_roles() {
    let fake = fake_with_service_client().await;
    fake.add_realm_role("admin", &["operator"]);
    fake.add_realm_role("operator", &["viewer", "admin"]);
    fake.add_group("/institutions", &["member"]);
    fake.add_group("/institutions/esa/ops", &["admin"]);
    fake.add_realm_role("unrelated", &[]);
    let id = fake.add_user(FakeUser::new("alice"));
    fake.join_group("alice", "/institutions/esa/ops");
    fake.grant_realm_role("alice", "direct");
    fake.grant_realm_role("alice", "removed");
    fake.revoke_realm_role("alice", "removed");
    let token = admin_token(&fake).await;

    let (status, roles) = admin_get(
        &fake,
        &token,
        &format!("/users/{id}/role-mappings/realm/composite"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut role_names = names(&roles);
    role_names.sort();
    assert_eq!(
        role_names,
        [
            "admin",
            "default-roles-osam",
            "direct",
            "member",
            "offline_access",
            "operator",
            "uma_authorization",
            "viewer"
        ]
    );
    let admin = roles
        .as_array()
        .expect("array")
        .iter()
        .find(|role| role["name"] == "admin")
        .expect("admin role");
    assert_eq!(admin["composite"], true);
    assert_eq!(admin["clientRole"], false);
    assert!(admin["id"].is_string() && admin["containerId"].is_string());

    let (status, groups) = admin_get(&fake, &token, &format!("/users/{id}/groups")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(groups[0]["path"], "/institutions/esa/ops");
    assert_eq!(groups[0]["name"], "ops");
    let (status, _) = admin_get(&fake, &token, "/users/no-such-id/role-mappings/realm/composite").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_roles_are_found_through_the_clients_uuid() {
    let fake = fake_with_service_client().await;
    fake.add_client("osam");
    fake.add_client_role("osam", "unused");
    let id = fake.add_user(FakeUser::new("bob"));
    fake.grant_client_role("bob", "osam", "writer");
    let token = admin_token(&fake).await;
    let (_, clients) = admin_get(&fake, &token, "/clients?clientId=osam").await;
    let clients = clients.as_array().expect("array").clone();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["clientId"], "osam");
    let uuid = clients[0]["id"].as_str().expect("id");
    assert_eq!(Some(uuid.to_owned()), fake.client_uuid("osam"));
    let (_, none) = admin_get(&fake, &token, "/clients?clientId=nope").await;
    assert_eq!(none, json!([]));

    let (status, roles) = admin_get(
        &fake,
        &token,
        &format!("/users/{id}/role-mappings/clients/{uuid}/composite"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&roles), ["writer"]);
    assert_eq!(roles[0]["clientRole"], true);
    assert_eq!(roles[0]["containerId"], uuid);
}

#[tokio::test]
async fn user_groups_are_paged_with_full_paths() {
    let fake = fake_with_service_client().await;
    let id = fake.add_user(FakeUser::new("carol"));
    for path in ["/b", "/a/x", "/c/y/z"] {
        fake.join_group("carol", path);
    }
    let token = admin_token(&fake).await;
    let paths = |groups: &Value| -> Vec<String> {
        groups
            .as_array()
            .expect("array")
            .iter()
            .map(|group| group["path"].as_str().expect("path").to_owned())
            .collect()
    };
    let (_, first_page) = admin_get(&fake, &token, &format!("/users/{id}/groups?first=0&max=2")).await;
    assert_eq!(paths(&first_page), ["/a/x", "/b"]);
    let (_, second_page) = admin_get(
        &fake,
        &token,
        &format!("/users/{id}/groups?first=2&max=2&briefRepresentation=false"),
    )
    .await;
    assert_eq!(paths(&second_page), ["/c/y/z"]);
    assert!(second_page[0]["realmRoles"].is_array());
}

#[tokio::test]
async fn put_replaces_the_whole_attribute_map_and_keeps_absent_fields() {
    let fake = fake_with_service_client().await;
    let mut user = FakeUser::new("dave");
    user.email = Some("dave@example.org".to_owned());
    user.attributes
        .insert("keep-me".to_owned(), vec!["not kept".to_owned()]);
    let id = fake.add_user(user);
    let token = admin_token(&fake).await;
    let client = reqwest::Client::new();

    let (_, fetched) = admin_get(&fake, &token, &format!("/users/{id}")).await;
    assert_eq!(fetched["attributes"]["keep-me"], json!(["not kept"]));
    assert_eq!(fetched["email"], "dave@example.org");

    let response = client
        .put(admin_url(&fake, &format!("/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({ "firstName": "Dave", "attributes": { "osam": ["a", "b"] } }))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let expected = BTreeMap::from([("osam".to_owned(), vec!["a".to_owned(), "b".to_owned()])]);
    assert_eq!(fake.user_attributes("dave"), expected);
    let (_, fetched) = admin_get(&fake, &token, &format!("/users/{id}")).await;
    assert_eq!(fetched["firstName"], "Dave");
    assert_eq!(fetched["email"], "dave@example.org", "absent fields are kept");
    assert_eq!(fetched["enabled"], true);

    let missing = client
        .put(admin_url(&fake, "/users/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(&token)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("put");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"], "User not found");
}

fn decoding_keys(jwks: &Value) -> BTreeMap<String, DecodingKey> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| {
            assert_eq!(key["kty"], "RSA");
            assert_eq!(key["alg"], "RS256");
            assert_eq!(key["use"], "sig");
            let jwk: Jwk = serde_json::from_value(key.clone()).expect("a JWK");
            let kid = jwk.common.key_id.clone().expect("kid");
            (kid, DecodingKey::from_jwk(&jwk).expect("decoding key"))
        })
        .collect()
}

async fn verify(fake: &FakeKeycloak, token: &str) -> Value {
    let jwks: Value = reqwest::get(fake.jwks_uri())
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let keys = decoding_keys(&jwks);
    let header = jsonwebtoken::decode_header(token).expect("header");
    let key = &keys[&header.kid.expect("kid")];
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["osam"]);
    validation.set_issuer(&[fake.issuer()]);
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .expect("the token verifies")
        .claims
}

#[tokio::test]
async fn user_tokens_verify_against_the_jwks_before_and_after_key_rotation() {
    let fake = fake_with_service_client().await;
    fake.add_realm_role("osam-admin", &["osam-user"]);
    fake.add_group("/institutions/esa", &["osam-admin"]);
    let mut user = FakeUser::new("erin");
    user.email = Some("erin@example.org".to_owned());
    let id = fake.add_user(user);
    fake.join_group("erin", "/institutions/esa");
    fake.grant_client_role("erin", "osam", "bucket-reader");

    let old_token = fake.user_token("erin", Duration::from_secs(60));
    let claims = verify(&fake, &old_token).await;
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["iss"], fake.issuer());
    assert_eq!(claims["preferred_username"], "erin");
    assert_eq!(claims["email"], "erin@example.org");
    assert_eq!(claims["typ"], "Bearer");
    assert_eq!(claims["groups"], json!(["/institutions/esa"]));
    let realm_roles = claims["realm_access"]["roles"].as_array().expect("roles");
    assert!(realm_roles.contains(&json!("osam-user")) && realm_roles.contains(&json!("offline_access")));
    assert_eq!(
        claims["resource_access"]["osam"]["roles"],
        json!(["bucket-reader"])
    );
    assert!(claims["aud"].as_array().expect("aud").contains(&json!("account")));
    let lifetime = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
    assert_eq!(lifetime, 60);

    let old_kid = fake.signing_key_id();
    fake.rotate_signing_key();
    assert_ne!(fake.signing_key_id(), old_kid);
    let new_token = fake.user_token("erin", Duration::from_secs(60));
    let new_header = jsonwebtoken::decode_header(&new_token).expect("header");
    assert_eq!(new_header.kid, Some(fake.signing_key_id()));
    verify(&fake, &new_token).await;
    verify(&fake, &old_token).await;
}

#[tokio::test]
async fn discovery_document_points_at_the_realms_endpoints() {
    let fake = FakeKeycloak::start(REALM).await;
    let url = format!("{}/.well-known/openid-configuration", fake.issuer());
    let document: Value = reqwest::get(url).await.expect("get").json().await.expect("json");
    assert_eq!(document["issuer"], fake.issuer());
    assert_eq!(document["jwks_uri"], fake.jwks_uri());
    assert_eq!(document["token_endpoint"], fake.token_endpoint());
    assert!(document["authorization_endpoint"].is_string());
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
}

#[tokio::test]
async fn unknown_paths_and_realms_answer_404_like_keycloak() {
    let fake = FakeKeycloak::start(REALM).await;
    let response = reqwest::get(format!("{}/no/such/path", fake.base_url()))
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "Unable to find matching target resource method");
    let other_realm = reqwest::get(format!(
        "{}/realms/other/protocol/openid-connect/certs",
        fake.base_url()
    ))
    .await
    .expect("get");
    assert_eq!(other_realm.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn fail_next_answers_the_status_with_a_json_body_then_recovers() {
    let fake = fake_with_service_client().await;
    fake.faults().fail_next(2, 503);
    let client = reqwest::Client::new();
    for _ in 0..2 {
        let response = client.get(fake.jwks_uri()).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.expect("json");
        assert!(body["error"].is_string());
    }
    let recovered = client.get(fake.jwks_uri()).send().await.expect("request");
    assert_eq!(recovered.status(), StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_next_answers_429_with_retry_after() {
    let fake = fake_with_service_client().await;
    fake.faults().rate_limit_next(1, 7);
    let response = reqwest::Client::new()
        .post(token_url(&fake))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(fake.token_requests(), 1);
    admin_token(&fake).await;
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn drop_next_closes_the_connection_without_a_response() {
    let fake = fake_with_service_client().await;
    let client = reqwest::Client::new();
    // Warm a pooled connection first so both fresh and reused connections are covered.
    assert!(
        client
            .get(fake.jwks_uri())
            .send()
            .await
            .expect("warm")
            .status()
            .is_success()
    );
    fake.faults().drop_next(2);
    for _ in 0..2 {
        let error = client
            .get(fake.jwks_uri())
            .send()
            .await
            .expect_err("no HTTP response");
        assert!(error.status().is_none(), "{error:?}");
        assert!(error.is_request() || error.is_connect(), "{error:?}");
    }
    let recovered = client.get(fake.jwks_uri()).send().await.expect("request");
    assert_eq!(recovered.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_delays_every_response() {
    let fake = fake_with_service_client().await;
    fake.faults().set_latency(Duration::from_millis(150));
    let started = Instant::now();
    let response = reqwest::get(fake.jwks_uri()).await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let fake = FakeKeycloak::start(REALM).await;
    let url = fake.jwks_uri();
    assert!(reqwest::get(&url).await.expect("running").status().is_success());
    drop(fake);
    tokio::task::yield_now().await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    assert!(client.get(&url).send().await.is_err());
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let fake = fake_with_service_client().await;
    let debug = format!("{fake:?} {:?}", fake.faults());
    assert!(!debug.contains(CLIENT_SECRET), "{debug}");
}
