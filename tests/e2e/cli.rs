//! The `osam` commands other than serve: check-config and dev-token.

use crate::harness::osam_command;

fn run(state: &std::path::Path, args: &[&str]) -> (bool, i32, String, String) {
    let output = osam_command(state).args(args).output().expect("osam runs");
    (
        output.status.success(),
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let state = tempfile::tempdir().expect("temp dir");
    let config = state.path().join("osam.toml");
    std::fs::write(&config, "[catalog]\nmax_batch_size = 42\n").expect("write");
    let (ok, _, stdout, stderr) = run(
        state.path(),
        &["check-config", "--config", config.to_str().expect("utf-8")],
    );
    assert!(ok, "{stderr}");
    let effective: toml::Value = toml::from_str(&stdout).expect("prints TOML");
    assert_eq!(effective["catalog"]["max_batch_size"].as_integer(), Some(42));
    assert_eq!(effective["auth"]["key_source"].as_str(), Some("development"));
}

#[test]
fn check_config_names_the_bad_key_and_fails() {
    let state = tempfile::tempdir().expect("temp dir");
    let config = state.path().join("osam.toml");
    std::fs::write(&config, "[auth]\nleeway_seconds = -3\n").expect("write");
    let (ok, code, _, stderr) = run(
        state.path(),
        &["check-config", "--config", config.to_str().expect("utf-8")],
    );
    assert!(!ok);
    assert_eq!(code, 2);
    assert!(stderr.contains("auth.leeway_seconds"), "{stderr}");

    let environment_error = osam_command(state.path())
        .env("OSAM_CATALOG__MAX_BATCH_SIZE", "many")
        .arg("check-config")
        .output()
        .expect("runs");
    assert!(!environment_error.status.success());
    let stderr = String::from_utf8_lossy(&environment_error.stderr);
    assert!(stderr.contains("catalog.max_batch_size"), "{stderr}");
}

#[test]
fn environment_variables_override_the_file() {
    let state = tempfile::tempdir().expect("temp dir");
    let output = osam_command(state.path())
        .env("OSAM_CATALOG__MAX_BATCH_SIZE", "7")
        .arg("check-config")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let effective: toml::Value = toml::from_str(&String::from_utf8_lossy(&output.stdout)).expect("TOML");
    assert_eq!(effective["catalog"]["max_batch_size"].as_integer(), Some(7));
}

#[test]
fn dev_token_warns_loudly_and_refuses_other_setups() {
    let state = tempfile::tempdir().expect("temp dir");
    let (ok, _, stdout, stderr) = run(state.path(), &["dev-token", "--user", "alice"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim().split('.').count(), 3, "prints a JWT");
    assert!(stderr.contains("DEVELOPER credential"), "{stderr}");

    let (ok, _, _, stderr) = run(state.path(), &["dev-token", "--user", "nobody_here"]);
    assert!(!ok);
    assert!(
        stderr.contains("nobody_here") && stderr.contains("alice"),
        "names the known users: {stderr}"
    );

    let config = state.path().join("prod.toml");
    std::fs::write(
        &config,
        "[auth]\nkey_source = \"jwks\"\njwks_url = \"https://idp.example.org/certs\"\n",
    )
    .expect("write");
    let (ok, code, stdout, stderr) = run(
        state.path(),
        &[
            "dev-token",
            "--user",
            "alice",
            "--config",
            config.to_str().expect("utf-8"),
        ],
    );
    assert!(!ok && stdout.is_empty());
    assert_eq!(code, 2);
    assert!(stderr.contains("refusing"), "{stderr}");
}

#[test]
fn the_production_example_configuration_is_valid() {
    let state = tempfile::tempdir().expect("temp dir");
    let example = crate::harness::workspace_root().join("deploy/examples/osam.production.toml");
    let (ok, _, stdout, stderr) = run(
        state.path(),
        &["check-config", "--config", example.to_str().expect("utf-8")],
    );
    assert!(ok, "{stderr}");
    let effective: toml::Value = toml::from_str(&stdout).expect("TOML");
    assert_eq!(effective["auth"]["key_source"].as_str(), Some("jwks"));
}
