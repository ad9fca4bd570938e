//! Two datacenters: a token is usable in the other DC the moment it is minted, single-use
//! takes run at the token's home, and an unreachable home is UNAVAILABLE, never NOT_FOUND.

use std::sync::Arc;

use tessera_proto::stash::v1 as pb;
use tessera_testkit::TestPki;
use tessera_token_stash::test_util::{put_request, StashHarness};
use tonic::Code;

struct TwoDatacenters {
    a: StashHarness,
    b: StashHarness,
}

async fn two_datacenters() -> TwoDatacenters {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let (listeners_a, listeners_b) = (
        StashHarness::bind().await.expect("bind"),
        StashHarness::bind().await.expect("bind"),
    );
    let (addr_a, addr_b) = (
        listeners_a.main.local_addr().expect("addr"),
        listeners_b.main.local_addr().expect("addr"),
    );
    let a = StashHarness::builder(pki.clone())
        .datacenter("dc-a")
        .peer("dc-b", addr_b)
        .listeners(listeners_a)
        .start()
        .await
        .expect("dc-a starts");
    let b = StashHarness::builder(pki)
        .datacenter("dc-b")
        .peer("dc-a", addr_a)
        .listeners(listeners_b)
        .start()
        .await
        .expect("dc-b starts");
    TwoDatacenters { a, b }
}

fn put(single_use: bool) -> pb::PutRequest {
    put_request(
        if single_use { "code" } else { "session" },
        b"minted in dc-a".to_vec(),
        60,
        single_use,
        "",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_minted_in_one_dc_is_taken_in_the_other_at_once() {
    let dcs = two_datacenters().await;
    let mut in_a = dcs.a.client("login").await.expect("client");
    let mut in_b = dcs.b.client("login").await.expect("client");
    let token = in_a.put(put(true)).await.expect("put").into_inner().token;
    assert!(token.starts_with("dc-a."));

    let taken = in_b
        .take(pb::TakeRequest {
            token: token.clone(),
        })
        .await
        .expect("taken via dc-b");
    assert_eq!(taken.into_inner().value, b"minted in dc-a");

    // The take ran at home: dc-a knows the token is consumed, from either side.
    for client in [&mut in_a, &mut in_b] {
        let status = client
            .take(pb::TakeRequest {
                token: token.clone(),
            })
            .await
            .expect_err("once only");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(
            status.message().contains("consumed"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_across_dcs_have_one_winner() {
    let dcs = two_datacenters().await;
    let mut in_a = dcs.a.client("login").await.expect("client");
    let in_b = dcs.b.client("login").await.expect("client");
    for _ in 0..50 {
        let token = in_a.put(put(true)).await.expect("put").into_inner().token;
        let racers: Vec<_> = (0..16)
            .map(|i| {
                let mut client = if i % 2 == 0 {
                    in_a.clone()
                } else {
                    in_b.clone()
                };
                let token = token.clone();
                tokio::spawn(async move { client.take(pb::TakeRequest { token }).await.is_ok() })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            winners += usize::from(racer.await.expect("task"));
        }
        assert_eq!(winners, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_minted_in_one_dc_is_readable_and_deletable_in_the_other() {
    let dcs = two_datacenters().await;
    let mut in_a = dcs.a.client("session-jwt").await.expect("client");
    let mut in_b = dcs.b.client("session-jwt").await.expect("client");
    let token = in_a.put(put(false)).await.expect("put").into_inner().token;
    let got = in_b
        .get(pb::GetRequest {
            token: token.clone(),
        })
        .await
        .expect("read via dc-b");
    assert_eq!(got.into_inner().value, b"minted in dc-a");
    assert!(
        in_b.delete(pb::DeleteRequest {
            token: token.clone()
        })
        .await
        .expect("delete")
        .into_inner()
        .existed
    );
    let status = in_a
        .get(pb::GetRequest { token })
        .await
        .expect_err("deleted at home");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chosen_token_is_stored_at_its_home_dc_once_whichever_dc_is_asked() {
    let dcs = two_datacenters().await;
    let mut in_a = dcs.a.client("login").await.expect("client");
    let mut in_b = dcs.b.client("login").await.expect("client");
    let chosen = "dc-a.Y2hvc2VuLWF0LWhvbWUtb25jZS1vbmx5";
    let with_token = |value: &[u8]| {
        let mut request = put_request("marker", value.to_vec(), 60, false, "");
        request.token = chosen.into();
        request
    };
    in_b.put(with_token(b"first, through dc-b"))
        .await
        .expect("stored at dc-a through dc-b");
    let status = in_a
        .put(with_token(b"second, at home"))
        .await
        .expect_err("put-if-absent is decided at home");
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = in_b
        .put(with_token(b"third, through dc-b"))
        .await
        .expect_err("and the same through the other DC");
    assert_eq!(status.code(), Code::AlreadyExists);
    let read = in_a
        .get(pb::GetRequest {
            token: chosen.into(),
        })
        .await
        .expect("read at home");
    assert_eq!(read.into_inner().value, b"first, through dc-b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_is_decided_at_its_tokens_home_and_names_the_refused_operation() {
    let dcs = two_datacenters().await;
    let mut in_a = dcs.a.client("login").await.expect("client");
    let mut in_b = dcs.b.client("login").await.expect("client");
    let put_at = |token: &str, value: &[u8]| {
        let mut request = put_request("session", value.to_vec(), 60, false, "");
        request.token = token.into();
        pb::Operation {
            kind: Some(pb::operation::Kind::Put(request)),
        }
    };
    let (first, second) = (
        "dc-a.YXBwbGllZC1hdC1ob21lLWZpcnN0",
        "dc-a.YXBwbGllZC1hdC1ob21lLXNlY29uZA",
    );
    let applied = in_b
        .apply(pb::ApplyRequest {
            operations: vec![put_at(first, b"one"), put_at(second, b"two")],
        })
        .await
        .expect("applied at dc-a through dc-b")
        .into_inner();
    assert_eq!(applied.expires_at_unix_ms.len(), 2);
    let read = in_a
        .get_many(pb::GetManyRequest {
            tokens: vec![first.into(), second.into()],
        })
        .await
        .expect("read at home")
        .into_inner();
    let values: Vec<_> = read.entries.iter().map(|e| e.value.as_slice()).collect();
    assert_eq!(values, [&b"one"[..], &b"two"[..]]);

    // Refused at home, answered through dc-b with the index of the refused operation.
    let third = "dc-a.YXBwbGllZC1hdC1ob21lLXRoaXJk";
    let status = in_b
        .apply(pb::ApplyRequest {
            operations: vec![put_at(third, b"three"), put_at(second, b"again")],
        })
        .await
        .expect_err("the second put collides");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        status
            .metadata()
            .get(tessera_token_stash::OPERATION_METADATA)
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "{status:?}"
    );
    let read = in_a
        .get_many(pb::GetManyRequest {
            tokens: vec![third.into()],
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(
        read.entries[0].absent, "not_found",
        "nothing of the refused batch"
    );

    // One call may not span datacenters.
    let status = in_a
        .apply(pb::ApplyRequest {
            operations: vec![
                put_at(third, b"three"),
                put_at("dc-b.YXBwbGllZC1hdC1ob21lLWZvdXJ0aA", b"four"),
            ],
        })
        .await
        .expect_err("two datacenters");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("one call per datacenter"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_home_dc_is_unavailable_and_named() {
    let pki = Arc::new(TestPki::new().expect("pki"));
    // An address nobody listens on: bind, note it, and close it again.
    let vacant = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let vacant_addr = vacant.local_addr().expect("addr");
    drop(vacant);
    let b = StashHarness::builder(pki)
        .datacenter("dc-b")
        .peer("dc-a", vacant_addr)
        .start()
        .await
        .expect("dc-b starts");
    let mut in_b = b.client("login").await.expect("client");
    let token = "dc-a.AAAAAAAAAAAAAAAAAAAAAA".to_owned();
    let status = in_b
        .take(pb::TakeRequest {
            token: token.clone(),
        })
        .await
        .expect_err("home is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("dc-a"), "{}", status.message());
    let status = in_b
        .get(pb::GetRequest { token })
        .await
        .expect_err("home is down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    let status = in_b
        .take(pb::TakeRequest {
            token: "dc-z.AAAAAAAAAAAAAAAAAAAAAA".into(),
        })
        .await
        .expect_err("no such peer");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("dc-z"), "{}", status.message());
}

/// A peer address answered by a certificate from the Tessera CA that names the peer's DNS
/// name but another service's identity is not the peer: nothing is forwarded to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_answering_with_another_services_certificate_is_refused() {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let impostor_files = pki
        .files_also_naming("audit", &["token-stash", "localhost"])
        .expect("impostor certificate");
    let impostor = StashHarness::builder(pki.clone())
        .datacenter("dc-a")
        .tls_files(&impostor_files)
        .start()
        .await
        .expect("impostor starts");
    let channel = pki
        .channel_to(&pki.files("login"), impostor.grpc_addr, "audit")
        .await
        .expect("channel to the impostor");
    let token = tessera_proto::stash::v1::token_stash_client::TokenStashClient::new(channel)
        .put(put(true))
        .await
        .expect("the impostor holds a code")
        .into_inner()
        .token;

    let b = StashHarness::builder(pki)
        .datacenter("dc-b")
        .peer("dc-a", impostor.grpc_addr)
        .start()
        .await
        .expect("dc-b starts");
    let mut in_b = b.client("login").await.expect("client");
    let status = in_b
        .take(pb::TakeRequest { token })
        .await
        .expect_err("never forwarded to a server that is not a stash");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("dc-a"), "{}", status.message());
    assert!(
        status.message().contains("spiffe://tessera/audit"),
        "the operator is told who answered: {}",
        status.message()
    );
}
