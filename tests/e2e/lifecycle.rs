//! Graceful shutdown: on SIGTERM health turns NOT_SERVING before the server drains and exits.

use std::time::Duration;

use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::OsamServer;

#[tokio::test]
async fn sigterm_reports_not_serving_then_drains_and_exits() {
    let mut server = OsamServer::start("");
    let mut health = HealthClient::new(server.channel().await);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = updates.message().await.expect("stream").expect("status");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    server.terminate();
    let update = tokio::time::timeout(Duration::from_secs(10), updates.message())
        .await
        .expect("an update before the deadline")
        .expect("the stream is still open while draining")
        .expect("a status");
    assert_eq!(update.status, ServingStatus::NotServing as i32);

    // The watch is the last in-flight call; once it ends the server has nothing left to drain.
    drop(updates);
    drop(health);
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .await
        .expect("exits before the grace period ends");
    assert!(status.success(), "{status:?}");
    let messages: Vec<String> = server
        .logs()
        .iter()
        .filter_map(|event| event["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        messages
            .iter()
            .any(|message| message.starts_with("shutting down")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|message| message == "stopped"),
        "{messages:?}"
    );
}
