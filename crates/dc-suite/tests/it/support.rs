//! Requests and small helpers the scenarios share.

use std::future::Future;

use tessera_dc_suite::{DatacenterSpec, Deployment};
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tonic::transport::Channel;

/// Starts two datacenters (blocking work, off the async threads).
pub async fn deploy(a: DatacenterSpec, b: DatacenterSpec) -> Deployment {
    tokio::task::spawn_blocking(move || Deployment::start(a, b))
        .await
        .expect("start task")
        .expect("two datacenters start")
}

/// Starts two datacenters whose traffic to each other is delayed `one_way` each way.
pub async fn deploy_over_wan(
    a: DatacenterSpec,
    b: DatacenterSpec,
    one_way: std::time::Duration,
) -> Deployment {
    tokio::task::spawn_blocking(move || Deployment::start_with_wan_delay(a, b, one_way))
        .await
        .expect("start task")
        .expect("two datacenters start")
}

/// A session for `user` at the site `wiki-a`.
pub fn issue(user: &str) -> tessera_proto::session::v1::IssueRequest {
    tessera_proto::session::v1::IssueRequest {
        user_id: user.into(),
        user_name: String::new(),
        audience: "wiki-a".into(),
        parent_session_id: String::new(),
    }
}

/// A single-use code-like entry.
pub fn code(value: &str, ttl_seconds: u32) -> pb::PutRequest {
    pb::PutRequest {
        namespace: "code".into(),
        value: value.as_bytes().to_vec(),
        ttl_seconds,
        single_use: true,
        owner: String::new(),
        token: String::new(),
    }
}

/// The stable code a Tessera error carries in its metadata.
pub fn code_of(status: &tonic::Status) -> Option<String> {
    status
        .metadata()
        .get("tessera-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Puts `count` codes through `client`, 32 at a time; the tokens and values stored.
pub async fn mint(
    client: &TokenStashClient<Channel>,
    count: usize,
    ttl_seconds: u32,
    label: &str,
) -> Vec<(String, String)> {
    let results = in_batches(count, |i| {
        let mut client = client.clone();
        let value = format!("{label}-{i}");
        async move {
            let token = client
                .put(code(&value, ttl_seconds))
                .await
                .map(|r| r.into_inner().token);
            (token, value)
        }
    })
    .await;
    results
        .into_iter()
        .map(|(token, value)| (token.expect("put acknowledged"), value))
        .collect()
}

/// Takes each of `codes` once through `client`, 32 at a time; the answers in order.
pub async fn redeem(
    client: &TokenStashClient<Channel>,
    codes: &[(String, String)],
) -> Vec<Result<Vec<u8>, tonic::Status>> {
    in_batches(codes.len(), |i| {
        let mut client = client.clone();
        let token = codes[i].0.clone();
        async move {
            client
                .take(pb::TakeRequest { token })
                .await
                .map(|r| r.into_inner().value)
        }
    })
    .await
}

/// Runs `count` calls of `call`, 32 in flight at a time, answers in order.
pub async fn in_batches<T, F, Fut>(count: usize, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut answers = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        batch.push(tokio::spawn(call(i)));
        if batch.len() == 32 || i + 1 == count {
            for task in batch.drain(..) {
                answers.push(task.await.expect("task"));
            }
        }
    }
    answers
}
