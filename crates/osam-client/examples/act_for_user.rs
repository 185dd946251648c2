//! An app acting for a user: the app authenticates with the token the platform mounted for it
//! (the launching user, re-read when rotated) and asks osam to act for the user, whose own rights
//! then decide. Needs the scope `users:impersonate`.
//!
//! OSAM_TOKEN_FILE=/var/run/secrets/osam/token cargo run -p osam-client --example act_for_user -- alice

use osam_client::credentials::{DEFAULT_TOKEN_FILE, LaunchingUser};
use osam_client::{OsamClient, pb};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("OSAM_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:50051".to_owned());
    let token_file = std::env::var("OSAM_TOKEN_FILE").unwrap_or_else(|_| DEFAULT_TOKEN_FILE.to_owned());
    let user = std::env::args().nth(1).ok_or("usage: act_for_user <username>")?;

    let app = OsamClient::builder(endpoint)
        .credentials(LaunchingUser::from_file(token_file))
        .build()?;
    let for_user = app.acting_for(&user)?;

    let me = for_user.who_am_i().await?;
    let username = me.user.map(|info| info.username).unwrap_or_default();
    println!("acting as {username} (actor: {})", me.actor);

    let check = pb::CheckRequest {
        owner: "copernicus".to_owned(),
        collections: vec!["s1-l1".to_owned()],
        action: pb::CatalogAction::Write as i32,
        ..Default::default()
    };
    let decision = for_user.check(check).await?;
    println!("{username} may write copernicus/s1-l1: {}", decision.allowed);
    Ok(())
}
