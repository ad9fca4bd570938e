//! The gRPC contract of `stash.proto`: each status code for the case it names, with a
//! message a person can act on, on both backends.

use tessera_proto::stash::v1 as pb;
use tessera_token_stash::test_util::put_request;
use tonic::Code;

use crate::support::{for_each_backend, secs, Served, FIXTURE_CAPACITY};

for_each_backend!(served_embedded, served_redis:
    put_take_get_delete_round_trip,
    bad_input_is_invalid_argument_naming_the_field,
    unknown_tokens_are_not_found,
    consumed_and_expired_are_failed_precondition_naming_the_reason,
    a_full_stash_is_resource_exhausted,
    list_by_owner_returns_usable_tokens,
    concurrent_puts_of_one_chosen_token_have_one_winner,
);

fn put(
    namespace: &str,
    value: &[u8],
    ttl_seconds: u32,
    single_use: bool,
    owner: &str,
) -> pb::PutRequest {
    put_request(namespace, value.to_vec(), ttl_seconds, single_use, owner)
}

fn take(token: &str) -> pb::TakeRequest {
    pb::TakeRequest {
        token: token.into(),
    }
}

fn get(token: &str) -> pb::GetRequest {
    pb::GetRequest {
        token: token.into(),
    }
}

async fn put_take_get_delete_round_trip(s: Served) {
    let mut client = s.harness.client("login").await.expect("client");
    let code = client
        .put(put("code", b"grant", 60, true, "u1"))
        .await
        .expect("put")
        .into_inner();
    assert!(code.token.starts_with("dc1."), "{}", code.token);
    assert!(code.token.len() >= "dc1.".len() + 22);
    let expected_expiry = s.clock.shared().now().saturating_add(secs(60)).as_i64();
    assert_eq!(code.expires_at_unix_ms, expected_expiry);
    let taken = client
        .take(take(&code.token))
        .await
        .expect("take")
        .into_inner();
    assert_eq!(
        (
            taken.value.as_slice(),
            taken.namespace.as_str(),
            taken.owner.as_str()
        ),
        (&b"grant"[..], "code", "u1")
    );

    let session = client
        .put(put("session", b"state", 60, false, ""))
        .await
        .expect("put")
        .into_inner();
    let got = client
        .get(get(&session.token))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (got.value.as_slice(), got.expires_at_unix_ms),
        (&b"state"[..], session.expires_at_unix_ms)
    );
    let deleted = client
        .delete(pb::DeleteRequest {
            token: session.token.clone(),
        })
        .await
        .expect("delete");
    assert!(deleted.into_inner().existed);
    let again = client
        .delete(pb::DeleteRequest {
            token: session.token,
        })
        .await
        .expect("delete");
    assert!(!again.into_inner().existed);
}

async fn bad_input_is_invalid_argument_naming_the_field(s: Served) {
    let mut client = s.harness.client("login").await.expect("client");
    let cases = [
        (put("", b"v", 60, true, ""), "namespace"),
        (put("code", &vec![0; 64 * 1024 + 1], 60, true, ""), "value"),
        (put("code", b"v", 0, true, ""), "ttl_seconds"),
        (put("code", b"v", 86_401, true, ""), "ttl_seconds"),
        (put("code", b"v", 60, true, &"o".repeat(257)), "owner"),
    ];
    for (request, field) in cases {
        let status = client.put(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    assert!(
        client
            .put(put(
                "code",
                &vec![0; 64 * 1024],
                86_400,
                true,
                &"o".repeat(256)
            ))
            .await
            .is_ok(),
        "limits are inclusive"
    );

    for malformed in ["", "no-dot", "dc1.short", "dc1.!!!!!!!!!!!!!!!!!!!!!!!!"] {
        let status = client.take(take(malformed)).await.expect_err("malformed");
        assert_eq!(status.code(), Code::InvalidArgument, "{malformed:?}");
        assert!(
            status.message().contains("malformed"),
            "{}",
            status.message()
        );
    }

    let session = client
        .put(put("session", b"s", 60, false, ""))
        .await
        .expect("put")
        .into_inner();
    let status = client
        .take(take(&session.token))
        .await
        .expect_err("take on reusable");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("use Get"), "{}", status.message());
    let code = client
        .put(put("code", b"c", 60, true, ""))
        .await
        .expect("put")
        .into_inner();
    let status = client
        .get(get(&code.token))
        .await
        .expect_err("get on single-use");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("use Take"),
        "{}",
        status.message()
    );

    let status = client
        .list_by_owner(pb::ListByOwnerRequest {
            namespace: "session".into(),
            owner: String::new(),
            since_unix_ms: 0,
        })
        .await
        .expect_err("owner required");
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn unknown_tokens_are_not_found(s: Served) {
    let mut client = s.harness.client("session-jwt").await.expect("client");
    let stranger = "dc1.AAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        client
            .take(take(stranger))
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
    assert_eq!(
        client.get(get(stranger)).await.expect_err("unknown").code(),
        Code::NotFound
    );
}

async fn consumed_and_expired_are_failed_precondition_naming_the_reason(s: Served) {
    let mut client = s.harness.client("login").await.expect("client");
    let code = client
        .put(put("code", b"c", 60, true, ""))
        .await
        .expect("put")
        .into_inner();
    client.take(take(&code.token)).await.expect("first take");
    let status = client
        .take(take(&code.token))
        .await
        .expect_err("second take");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("consumed"),
        "{}",
        status.message()
    );

    let late = client
        .put(put("code", b"c", 1, true, ""))
        .await
        .expect("put")
        .into_inner();
    s.clock.advance(secs(1));
    let status = client.take(take(&late.token)).await.expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("expired"), "{}", status.message());
}

async fn a_full_stash_is_resource_exhausted(s: Served) {
    let mut client = s.harness.client("login").await.expect("client");
    let mut tokens = Vec::new();
    for _ in 0..FIXTURE_CAPACITY {
        tokens.push(
            client
                .put(put("session", b"kept", 60, false, ""))
                .await
                .expect("put")
                .into_inner()
                .token,
        );
    }
    let status = client
        .put(put("session", b"extra", 60, false, ""))
        .await
        .expect_err("full");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("capacity_entries"),
        "{}",
        status.message()
    );
    for token in tokens {
        assert_eq!(
            client
                .get(get(&token))
                .await
                .expect("kept")
                .into_inner()
                .value,
            b"kept"
        );
    }
    let stats = client
        .stats(pb::StatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(
        (stats.live_entries, stats.capacity_entries),
        (FIXTURE_CAPACITY, FIXTURE_CAPACITY)
    );
}

async fn list_by_owner_returns_usable_tokens(s: Served) {
    let mut client = s.harness.client("session-jwt").await.expect("client");
    let a = client
        .put(put("session", b"a", 60, false, "erin"))
        .await
        .expect("put")
        .into_inner()
        .token;
    let b = client
        .put(put("session", b"b", 60, false, "erin"))
        .await
        .expect("put")
        .into_inner()
        .token;
    client
        .put(put("session", b"c", 60, false, "frank"))
        .await
        .expect("put");
    let mut listed = client
        .list_by_owner(pb::ListByOwnerRequest {
            namespace: "session".into(),
            owner: "erin".into(),
            since_unix_ms: 0,
        })
        .await
        .expect("list")
        .into_inner()
        .tokens;
    listed.sort();
    let mut expected = vec![a.clone(), b];
    expected.sort();
    assert_eq!(listed, expected);
    client
        .delete(pb::DeleteRequest { token: a })
        .await
        .expect("delete");
    let listed = client
        .list_by_owner(pb::ListByOwnerRequest {
            namespace: "session".into(),
            owner: "erin".into(),
            since_unix_ms: 0,
        })
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert_eq!(listed.len(), 1);

    // Following the list: a later call with the answer's next_since_unix_ms lists only
    // what was added since (and what reaches back into the overlap).
    let list_since = |since_unix_ms| pb::ListByOwnerRequest {
        namespace: "session".into(),
        owner: "erin".into(),
        since_unix_ms,
    };
    s.clock.advance(tessera_token_stash::LIST_OVERLAP + secs(1));
    let next_since = client
        .list_by_owner(list_since(0))
        .await
        .expect("full list")
        .into_inner()
        .next_since_unix_ms;
    assert!(next_since > 0, "a full list tells where to follow from");
    let d = client
        .put(put("session", b"d", 60, false, "erin"))
        .await
        .expect("put")
        .into_inner()
        .token;
    let followed = client
        .list_by_owner(list_since(next_since))
        .await
        .expect("list since")
        .into_inner();
    assert_eq!(followed.tokens, vec![d], "only what was added since");
    assert!(followed.next_since_unix_ms >= next_since);

    let far_future = client
        .list_by_owner(list_since(i64::MAX))
        .await
        .expect("a time no entry reaches")
        .into_inner();
    assert!(far_future.tokens.is_empty(), "{:?}", far_future.tokens);

    let status = client
        .list_by_owner(list_since(-1))
        .await
        .expect_err("a negative time");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("since_unix_ms"),
        "{}",
        status.message()
    );
}

async fn concurrent_puts_of_one_chosen_token_have_one_winner(s: Served) {
    let client = s.harness.client("session-jwt").await.expect("client");
    let chosen = "dc1.cmFjZS1mb3ItdGhlLXNhbWUtdG9rZW4";
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let mut request = put("result", format!("candidate-{i}").as_bytes(), 60, false, "");
                request.token = chosen.into();
                client.put(request).await.map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            Ok(i) => winners.push(i),
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one put wins");
    let mut client = client;
    let stored = client
        .get(get(chosen))
        .await
        .expect("get")
        .into_inner()
        .value;
    assert_eq!(
        stored,
        format!("candidate-{}", winners[0]).into_bytes(),
        "everyone reads the winner's value"
    );
}
