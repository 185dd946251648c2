//! The account sync over the wire with the embedded provider and the static directory: creation
//! and links, idempotence, deletions that never touch unmanaged accounts, the refusal of a plan
//! that would delete too much, dry runs, credentials, and a crash in the middle of a sync.

use std::time::Duration;

use osam_proto::v1 as pb;
use tonic::Code;

use crate::harness::{OsamServer, reason_of, sync_accounts};

fn users_yaml(names: &[&str]) -> String {
    let mut yaml = String::from("users:\n  operator:\n    roles: rs_osam_update\n");
    for name in names {
        yaml.push_str(&format!(
            "  {name}:\n    roles: [\"rs_catalog_copernicus:s1-l1_read\"]\n"
        ));
    }
    yaml
}

struct Setup {
    server: OsamServer,
    users: tempfile::NamedTempFile,
}

fn start(names: &[&str], extra: &str) -> Setup {
    let users = tempfile::NamedTempFile::new().expect("users");
    std::fs::write(users.path(), users_yaml(names)).expect("write");
    let config = format!(
        "[directory]\nfile = {:?}\nreload_interval_seconds = 1\n{extra}",
        users.path()
    );
    Setup {
        server: OsamServer::start(&config),
        users,
    }
}

async fn list(server: &OsamServer) -> Vec<pb::AccountEntry> {
    let mut accounts = server.accounts(&server.dev_token("operator")).await;
    let mut entries = Vec::new();
    let mut token = String::new();
    loop {
        let page = pb::PageRequest {
            page_size: 3,
            page_token: token,
        };
        let response = accounts
            .list_accounts(pb::ListAccountsRequest { page: Some(page) })
            .await
            .expect("list")
            .into_inner();
        entries.extend(response.accounts);
        if response.next_page_token.is_empty() {
            return entries;
        }
        token = response.next_page_token;
    }
}

/// Waits until the static directory has reloaded a change (it is checked every second).
async fn wait_for_directory(server: &OsamServer, expected_users: usize) {
    for _ in 0..50 {
        if list(server).await.len() == expected_users {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the directory did not reload to {expected_users} users");
}

#[tokio::test]
async fn a_sync_creates_and_links_accounts_and_a_second_changes_nothing() {
    let setup = start(&["alice", "bob", "carol"], "");
    let first = sync_accounts(&setup.server, false).await;
    assert_eq!(
        (first.state, first.created, first.failures.len()),
        (pb::SyncState::Finished as i32, 4, 0),
        "{first:?}"
    );
    let entries = list(&setup.server).await;
    assert_eq!(entries.len(), 4);
    assert!(
        entries
            .iter()
            .all(|entry| !entry.account_id.is_empty() && !entry.access_key_id.is_empty()),
        "{entries:?}"
    );

    let second = sync_accounts(&setup.server, false).await;
    assert_eq!(
        (second.created, second.deleted, second.relinked, second.kept),
        (0, 0, 0, 4)
    );

    // The user fetches their own credentials; the operator applies their rights to that account.
    let alice_entry = entries
        .iter()
        .find(|entry| entry.username == "alice")
        .expect("alice");
    let mut as_alice = setup.server.accounts(&setup.server.dev_token("alice")).await;
    let credentials = as_alice
        .get_my_credentials(pb::GetMyCredentialsRequest {})
        .await
        .expect("credentials")
        .into_inner();
    assert_eq!(credentials.access_key_id, alice_entry.access_key_id);
    assert_eq!(credentials.account_id, alice_entry.account_id);
    assert!(credentials.secret_access_key.len() >= 20);
    let logs = serde_json::to_string(&setup.server.logs()).expect("logs");
    assert!(
        !logs.contains(&credentials.secret_access_key),
        "the secret never reaches the logs"
    );

    let mut rights = setup.server.rights(&setup.server.dev_token("operator")).await;
    let applied = rights
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect("applied");
    assert_eq!(applied.into_inner().account_id, alice_entry.account_id);
    let mut status = setup.server.accounts(&setup.server.dev_token("operator")).await;
    let last = status
        .get_sync_status(pb::GetSyncStatusRequest {})
        .await
        .expect("status")
        .into_inner()
        .last
        .expect("last");
    assert_eq!(last.kept, 4);
    assert!(last.triggered_at.is_some() && last.duration.is_some());
}

#[tokio::test]
async fn users_who_leave_lose_their_account_and_unmanaged_accounts_survive() {
    let setup = start(
        &[
            "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hugo", "ines", "jack",
        ],
        "",
    );
    sync_accounts(&setup.server, false).await;
    // Accounts osam does not own: another tool's, a near-miss marker, a bare prefix.
    let state_file = setup.server.state.path().join("accounts.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state")).expect("JSON");
    for (id, marker) in [
        ("foreign-1", "other-tool:alice"),
        ("foreign-2", "osam-managed-x:bob"),
        ("foreign-3", "osam-managed:"),
    ] {
        state["accounts"][id] =
            serde_json::json!({"marker": marker, "access_key_id": "K", "secret_access_key": "S"});
    }
    std::fs::write(&state_file, state.to_string()).expect("write");

    std::fs::write(
        setup.users.path(),
        users_yaml(&[
            "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hugo", "ines",
        ]),
    )
    .expect("write");
    wait_for_directory(&setup.server, 10).await;
    let run = sync_accounts(&setup.server, false).await;
    assert_eq!((run.deleted, run.failures.len()), (1, 0), "{run:?}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state")).expect("JSON");
    let markers: Vec<&str> = state["accounts"]
        .as_object()
        .expect("accounts")
        .values()
        .filter_map(|account| account["marker"].as_str())
        .collect();
    assert!(!markers.contains(&"osam-managed:jack"), "jack's account is gone");
    for foreign in ["other-tool:alice", "osam-managed-x:bob", "osam-managed:"] {
        assert!(markers.contains(&foreign), "{foreign} survives");
    }
}

#[tokio::test]
async fn a_plan_that_deletes_too_much_is_refused_unless_forced() {
    let setup = start(&["alice", "bob", "carol", "dave"], "");
    sync_accounts(&setup.server, false).await;
    // A broken directory answer: every user but the operator gone.
    std::fs::write(setup.users.path(), users_yaml(&[])).expect("write");
    wait_for_directory(&setup.server, 1).await;

    let mut accounts = setup.server.accounts(&setup.server.dev_token("operator")).await;
    let dry = accounts
        .sync_accounts(pb::SyncAccountsRequest {
            dry_run: true,
            wait: false,
            force: false,
        })
        .await
        .expect("dry run");
    let plan = dry.into_inner().plan.expect("plan");
    assert_eq!(plan.delete.len(), 4);
    assert!(plan.refusal.contains("4 of 5"), "{}", plan.refusal);

    let refused = sync_accounts(&setup.server, false).await;
    assert_eq!(refused.state, pb::SyncState::Refused as i32);
    assert!(
        refused.refusal.contains("force"),
        "says why and how: {}",
        refused.refusal
    );
    assert_eq!(list(&setup.server).await.len(), 1);
    let state = std::fs::read_to_string(setup.server.state.path().join("accounts.json")).expect("state");
    assert_eq!(state.matches("osam-managed:").count(), 5, "nothing was deleted");

    let forced = sync_accounts(&setup.server, true).await;
    assert_eq!(
        (forced.state, forced.deleted),
        (pb::SyncState::Finished as i32, 4)
    );
}

#[tokio::test]
async fn credentials_need_an_account_and_the_sync_needs_its_scope() {
    let setup = start(&["alice"], "");
    let mut as_alice = setup.server.accounts(&setup.server.dev_token("alice")).await;
    let status = as_alice
        .get_my_credentials(pb::GetMyCredentialsRequest {})
        .await
        .expect_err("no account yet");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason_of(&status), "NO_ACCOUNT");
    let status = as_alice
        .sync_accounts(pb::SyncAccountsRequest::default())
        .await
        .expect_err("no scope");
    assert_eq!(reason_of(&status), "MISSING_SCOPE");
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_sync_leaves_a_valid_state_that_the_next_sync_converges() {
    let names: Vec<String> = (0..600).map(|i| format!("user{i:04}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut setup = start(&name_refs, "[accounts]\nconcurrency = 4\n");
    let mut accounts = setup.server.accounts(&setup.server.dev_token("operator")).await;
    accounts
        .sync_accounts(pb::SyncAccountsRequest {
            dry_run: false,
            wait: false,
            force: false,
        })
        .await
        .expect("triggered");
    // Kill once the run has made progress, as a crash would.
    let mut progressed = false;
    for _ in 0..500 {
        let status = accounts
            .get_sync_status(pb::GetSyncStatusRequest {})
            .await
            .expect("status")
            .into_inner();
        if status.current.is_some_and(|current| current.created >= 20) {
            progressed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(progressed, "the sync was observed in progress");
    setup.server.crash_and_restart();

    let state_file = setup.server.state.path().join("accounts.json");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state"))
            .expect("the state file is valid JSON");
    let created_before_the_crash = state["accounts"].as_object().expect("accounts").len();
    assert!(
        created_before_the_crash < 601,
        "the crash happened before the end ({created_before_the_crash} accounts)"
    );

    let mut accounts = setup.server.accounts(&setup.server.dev_token("operator")).await;
    let dry = accounts
        .sync_accounts(pb::SyncAccountsRequest {
            dry_run: true,
            ..Default::default()
        })
        .await
        .expect("plan");
    let plan = dry.into_inner().plan.expect("plan");
    assert!(plan.delete.is_empty());
    assert!(
        !plan.create.is_empty() || !plan.relink.is_empty(),
        "work was left when the process died"
    );

    let run = sync_accounts(&setup.server, false).await;
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    let entries = list(&setup.server).await;
    assert_eq!(entries.len(), 601);
    assert!(
        entries.iter().all(|entry| !entry.account_id.is_empty()),
        "everyone is linked"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state")).expect("JSON");
    assert_eq!(
        state["accounts"].as_object().expect("accounts").len(),
        601,
        "one account each, no duplicate"
    );
    let again = sync_accounts(&setup.server, false).await;
    assert_eq!(
        (again.created, again.relinked, again.deleted),
        (0, 0, 0),
        "converged"
    );
}
