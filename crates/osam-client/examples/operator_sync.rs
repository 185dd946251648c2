//! An operator triggering an account sync and reading its status, with a developer token
//! (OSAM_DEV_TOKEN in the environment or ./.env; refused when OSAM_ENV=production).
//!
//! OSAM_DEV_TOKEN=$(osam dev-token --user operator) cargo run -p osam-client --example operator_sync

use osam_client::credentials::DeveloperUser;
use osam_client::{OsamClient, pb};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let endpoint = std::env::var("OSAM_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let client = OsamClient::builder(endpoint)
        .credentials(DeveloperUser::from_env()?)
        .build()?;

    let trigger = pb::SyncAccountsRequest {
        dry_run: true,
        wait: false,
        force: false,
    };
    match client.sync_accounts(trigger).await {
        Ok(response) => println!("plan: {:?}", response.plan),
        Err(error) => println!(
            "sync not run: {error} (reason {})",
            error.reason().unwrap_or("none")
        ),
    }
    match client.get_sync_status(pb::GetSyncStatusRequest {}).await {
        Ok(status) => println!("current: {:?}\nlast: {:?}", status.current, status.last),
        Err(error) => println!("no status: {error} (reason {})", error.reason().unwrap_or("none")),
    }
    Ok(())
}
