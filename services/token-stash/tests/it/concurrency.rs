//! Exactly-once takes through the real service: 64 callers race on each of 1,000 tokens.

use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_token_stash::test_util::put_request;
use tonic::Code;

use crate::support::{serve, BackendKind};

const TOKENS: usize = 1_000;
const RACERS: usize = 64;
/// Separate connections, so that racers really arrive concurrently.
const CONNECTIONS: usize = 4;

async fn take_is_exactly_once_for_64_racers_on_each_of_1000_tokens(backend: BackendKind) {
    let served = serve(backend, 1_000_000).await;
    let mut clients: Vec<TokenStashClient<_>> = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(served.harness.client("login").await.expect("client"));
    }
    for round in 0..TOKENS {
        let token = clients[0]
            .clone()
            .put(put_request(
                "code",
                round.to_string().into_bytes(),
                60,
                true,
                "",
            ))
            .await
            .expect("put")
            .into_inner()
            .token;
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let mut client = clients[i % CONNECTIONS].clone();
                let token = token.clone();
                tokio::spawn(async move { client.take(pb::TakeRequest { token }).await })
            })
            .collect();
        let (mut winners, mut consumed) = (0, 0);
        for racer in racers {
            match racer.await.expect("task") {
                Ok(reply) => {
                    assert_eq!(reply.into_inner().value, round.to_string().into_bytes());
                    winners += 1;
                }
                Err(status)
                    if status.code() == Code::FailedPrecondition
                        && status.message().contains("consumed") =>
                {
                    consumed += 1
                }
                Err(status) => panic!("round {round}: unexpected {status:?}"),
            }
        }
        assert_eq!((winners, consumed), (1, RACERS - 1), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_take_is_exactly_once_for_64_racers_on_each_of_1000_tokens() {
    take_is_exactly_once_for_64_racers_on_each_of_1000_tokens(BackendKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_take_is_exactly_once_for_64_racers_on_each_of_1000_tokens() {
    take_is_exactly_once_for_64_racers_on_each_of_1000_tokens(BackendKind::Redis).await;
}
