//! An operator triggering an account sync, waiting for it and reading the status, with a
//! developer token (OSAM_DEV_TOKEN in the environment or ./.env; refused when OSAM_ENV=production).
//! Pass `--dry-run` to see the plan without acting.
//!
//! OSAM_DEV_TOKEN=$(osam dev-token --user operator) cargo run -p osam-client --example operator_sync

use osam_client::credentials::DeveloperUser;
use osam_client::{OsamClient, pb};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let endpoint = std::env::var("OSAM_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let dry_run = std::env::args().any(|argument| argument == "--dry-run");
    let client = OsamClient::builder(endpoint)
        .credentials(DeveloperUser::from_env()?)
        .build()?;

    let response = client
        .sync_accounts(pb::SyncAccountsRequest {
            dry_run,
            wait: !dry_run,
            force: false,
        })
        .await?;
    if let Some(plan) = response.plan {
        println!(
            "plan: create {:?}, relink {:?}, delete {:?}, keep {}",
            plan.create, plan.relink, plan.delete, plan.keep
        );
        if !plan.refusal.is_empty() {
            println!("a real run would be refused: {}", plan.refusal);
        }
    }
    if let Some(run) = response.run {
        println!(
            "run: created {}, relinked {}, deleted {}, kept {}",
            run.created, run.relinked, run.deleted, run.kept
        );
        for failure in &run.failures {
            println!(
                "failed: {} ({}): {}",
                failure.subject, failure.step, failure.message
            );
        }
    }
    let status = client.get_sync_status(pb::GetSyncStatusRequest {}).await?;
    match status.last {
        Some(last) => println!("last run: state {}, {} failures", last.state, last.failures.len()),
        None => println!("no run has finished yet"),
    }
    Ok(())
}
