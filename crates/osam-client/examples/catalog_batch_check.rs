//! A catalog service checking a batch of collections for its running user: the user's own token
//! (here from OSAM_USER_TOKEN) is passed through, so osam decides with the user's roles.
//!
//! OSAM_ENDPOINT=http://127.0.0.1:50051 OSAM_USER_TOKEN=$(osam dev-token --user alice) \
//!     cargo run -p osam-client --example catalog_batch_check

use osam_client::credentials::RunningUser;
use osam_client::{OsamClient, pb};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("OSAM_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token =
        std::env::var("OSAM_USER_TOKEN").map_err(|_| "set OSAM_USER_TOKEN to the running user's token")?;
    let client = OsamClient::builder(endpoint)
        .credentials(RunningUser::new(token)?)
        .build()?;

    let question =
        |id: &str, owner: &str, collections: &[&str], action: pb::CatalogAction| pb::BatchCheckItem {
            correlation_id: id.to_owned(),
            check: Some(pb::CheckRequest {
                owner: owner.to_owned(),
                collections: collections
                    .iter()
                    .map(|collection| collection.to_string())
                    .collect(),
                action: action as i32,
                explain: true,
                ..Default::default()
            }),
        };
    let batch = pb::BatchCheckRequest {
        items: vec![
            question("search-s1", "copernicus", &["s1-l1"], pb::CatalogAction::Read),
            question(
                "download-s1",
                "copernicus",
                &["s1-l1"],
                pb::CatalogAction::Download,
            ),
            question(
                "search-s1-s2",
                "copernicus",
                &["s1-l1", "s2-l2"],
                pb::CatalogAction::Read,
            ),
            question("edit-s1", "copernicus", &["s1-l1"], pb::CatalogAction::Write),
        ],
    };
    for result in client.batch_check(batch).await?.results {
        match result.outcome {
            Some(pb::batch_check_result::Outcome::Response(response)) => {
                let verdict = if response.allowed { "allowed" } else { "denied" };
                println!("{}: {verdict} for {}", result.correlation_id, response.subject);
            }
            Some(pb::batch_check_result::Outcome::Error(error)) => {
                println!(
                    "{}: error {} ({})",
                    result.correlation_id, error.reason, error.message
                );
            }
            None => println!("{}: no outcome", result.correlation_id),
        }
    }
    Ok(())
}
