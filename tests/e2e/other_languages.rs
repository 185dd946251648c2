//! osam from other clients: the real grpcurl binary (reflection v1alpha, as grpcurl 1.8.6 speaks)
//! and a Python client generated from `proto/`. Both tools come from tests/python/requirements.txt
//! (installed by scripts/test.sh); their absence fails the test with the command to run.

use std::process::Command;

use crate::harness::{OsamServer, workspace_root};

fn tool(name: &str, variable: &str) -> String {
    let program = std::env::var(variable).unwrap_or_else(|_| name.to_owned());
    let found = Command::new(&program).arg("--help").output().is_ok();
    assert!(
        found,
        "{program} is not installed: run `bash scripts/test.sh` (it installs tests/python/requirements.txt) or set {variable}"
    );
    program
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().expect("runs");
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn grpcurl_lists_describes_and_checks() {
    let grpcurl = tool("grpcurl", "OSAM_TEST_GRPCURL");
    let server = OsamServer::start("");
    let address = server.address.as_str();

    let services = run(&grpcurl, &["-plaintext", address, "list"]);
    for service in [
        "osam.v1.CatalogAuthz",
        "osam.v1.RightsService",
        "osam.v1.AccountService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.lines().any(|line| line == service),
            "{service} missing from:\n{services}"
        );
    }

    let description = run(
        &grpcurl,
        &["-plaintext", address, "describe", "osam.v1.CatalogAuthz"],
    );
    assert!(description.contains("rpc BatchCheck"), "{description}");
    assert!(
        description.contains("Decides one (subject, owner, collections, action) question"),
        "doc comments are served: {description}"
    );
    let message = run(&grpcurl, &["-plaintext", address, "describe", "osam.v1.Subject"]);
    assert!(
        message.contains("Take `roles` and `groups` as the complete truth"),
        "{message}"
    );

    let token = server.dev_token("alice");
    let header = format!("authorization: Bearer {token}");
    let body =
        r#"{"owner":"copernicus","collections":["s1-l1"],"action":"CATALOG_ACTION_READ","explain":true}"#;
    let answer = run(
        &grpcurl,
        &[
            "-plaintext",
            "-H",
            &header,
            "-d",
            body,
            address,
            "osam.v1.CatalogAuthz/Check",
        ],
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(
        answer["decisions"][0]["reason"]["detail"],
        "rs_catalog_copernicus:s1-l1_read"
    );

    let denied = Command::new(&grpcurl)
        .args(["-plaintext", "-d", body, address, "osam.v1.CatalogAuthz/Check"])
        .output()
        .expect("runs");
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Unauthenticated"));
}

#[test]
fn a_python_client_generated_from_the_protos_calls_osam() {
    let python = tool("python3", "OSAM_TEST_PYTHON");
    let server = OsamServer::start("");
    let token = server.dev_token("alice");
    let script = workspace_root().join("tests/python/check_client.py");
    let output = run(
        &python,
        &[
            script.to_str().expect("utf-8"),
            "--address",
            &server.address,
            "--token",
            &token,
        ],
    );
    let result: serde_json::Value = serde_json::from_str(output.trim()).expect("JSON line");
    assert_eq!(result["username"], "alice");
    assert_eq!(
        result["displayed_name"],
        "alice \"Alice Martin <alice@example.org>\""
    );
    assert_eq!(result["allowed"], false);
    assert_eq!(
        result["collections"],
        serde_json::json!({"s1-l1": true, "s2-l2": false})
    );
    assert_eq!(
        result["reasons"],
        serde_json::json!(["REASON_KIND_CATALOG_ROLE", "REASON_KIND_NO_GRANT"])
    );
    assert_eq!(result["denied"], "PERMISSION_DENIED");
}
