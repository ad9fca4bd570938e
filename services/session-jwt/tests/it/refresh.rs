//! Refresh (rule F5): persisted before returned, identical for concurrent callers inside
//! the grace window, reuse after it revokes the family.

use std::time::Duration;

use tessera_proto::session::v1 as pb;
use tonic::Code;

use crate::support::{issue, refresh, stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_refreshes_get_one_identical_pair_that_verifies_at_once() {
    let stack = stack().await;
    let login = stack.login().await;
    let first = login
        .clone()
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let racers: Vec<_> = (0..64)
        .map(|_| {
            let mut login = login.clone();
            let token = first.refresh_token.clone();
            tokio::spawn(
                async move { login.refresh(refresh(&token)).await.map(|r| r.into_inner()) },
            )
        })
        .collect();
    let mut pairs = Vec::new();
    for racer in racers {
        pairs.push(racer.await.expect("task").expect("every refresh succeeds"));
    }
    let winner = &pairs[0];
    assert_ne!(winner.refresh_token, first.refresh_token, "rotated");
    for pair in &pairs {
        assert_eq!(
            (&pair.access_token, &pair.refresh_token),
            (&winner.access_token, &winner.refresh_token)
        );
    }
    let verified = login
        .clone()
        .verify(pb::VerifyRequest {
            token: winner.access_token.clone(),
            audience: "wiki-a".into(),
        })
        .await;
    assert!(verified.is_ok(), "{verified:?}");
    // The new refresh token works: it was stored before it was handed out.
    login
        .clone()
        .refresh(refresh(&winner.refresh_token))
        .await
        .expect("next refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_token_verifies_on_the_very_next_call_100_times_out_of_100() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let site = stack.site_verifier("wiki-a").await;
    let mut tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    for round in 0..100 {
        tokens = login
            .refresh(refresh(&tokens.refresh_token))
            .await
            .expect("refresh")
            .into_inner();
        let remote = login
            .verify(pb::VerifyRequest {
                token: tokens.access_token.clone(),
                audience: "wiki-a".into(),
            })
            .await;
        assert!(remote.is_ok(), "round {round}: {remote:?}");
        assert!(
            site.verify(&tokens.access_token, stack.clock.shared().now())
                .is_ok(),
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reuse_after_the_grace_window_revokes_the_whole_family() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let site = stack.site_verifier("wiki-a").await;
    let mut applied = stack.follow(site.clone()).await;
    let central = login
        .issue(issue("user-1", "login", ""))
        .await
        .expect("central")
        .into_inner();
    let derived = login
        .issue(issue("user-1", "wiki-a", &central.session_id))
        .await
        .expect("site")
        .into_inner();
    let rotated = login
        .refresh(refresh(&derived.refresh_token))
        .await
        .expect("refresh")
        .into_inner();

    stack.clock.advance(Duration::from_secs(29));
    let repeat = login
        .refresh(refresh(&derived.refresh_token))
        .await
        .expect("inside the grace window")
        .into_inner();
    assert_eq!(repeat.access_token, rotated.access_token);

    stack.clock.advance(Duration::from_secs(2));
    let status = login
        .refresh(refresh(&derived.refresh_token))
        .await
        .expect_err("reuse");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        tessera_service::code_of(&status) == Some("refresh_token_reused"),
        "{status:?}"
    );

    for token in [&rotated.refresh_token, &central.refresh_token] {
        let status = login
            .refresh(refresh(token))
            .await
            .expect_err("family revoked");
        assert!(
            tessera_service::code_of(&status) == Some("session_ended"),
            "{status:?}"
        );
    }
    crate::support::wait_for_event(&mut applied).await;
    let rejection = site
        .verify(&rotated.access_token, stack.clock.shared().now())
        .expect_err("revoked");
    assert_eq!(rejection.code(), "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_hard_lifetime_cannot_be_refreshed() {
    let stack = crate::support::stack_with(|config| config.session_lifetime_seconds = 600).await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    stack.clock.advance(Duration::from_secs(601));
    let status = login
        .refresh(refresh(&tokens.refresh_token))
        .await
        .expect_err("too old");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_refresh_token_is_not_found() {
    let stack = stack().await;
    let status = stack
        .login()
        .await
        .refresh(refresh("not-a-real-refresh-token"))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_left_idle_too_long_cannot_be_refreshed_but_an_active_one_can() {
    let stack = crate::support::stack_with(|config| config.session_idle_seconds = 900).await;
    let mut login = stack.login().await;
    let mut active = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let idle = login
        .issue(issue("user-2", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    for _ in 0..3 {
        stack.clock.advance(Duration::from_secs(600));
        active = login
            .refresh(refresh(&active.refresh_token))
            .await
            .expect("refreshed in time")
            .into_inner();
    }
    let status = login
        .refresh(refresh(&idle.refresh_token))
        .await
        .expect_err("idle for 30 minutes");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("idle"), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_cannot_refresh_another_sites_session_and_nothing_rotates() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let refused = login
        .refresh(pb::RefreshRequest {
            refresh_token: tokens.refresh_token.clone(),
            audience: "wiki-b".into(),
        })
        .await
        .expect_err("another site's refresh token");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("another site"), "{refused:?}");
    let own = login
        .refresh(pb::RefreshRequest {
            refresh_token: tokens.refresh_token.clone(),
            audience: "wiki-a".into(),
        })
        .await;
    assert!(own.is_ok(), "the owner still refreshes: {own:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_by_refresh_token_ends_the_session_only_for_its_own_site() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let by = |audience: &str| pb::RevokeRequest {
        audience: audience.into(),
        scope: Some(pb::revoke_request::Scope::RefreshToken(
            tokens.refresh_token.clone(),
        )),
    };
    let foreign = login.revoke(by("wiki-b")).await.expect("no error");
    assert_eq!(foreign.into_inner().sessions_revoked, 0);
    let own = login.revoke(by("wiki-a")).await.expect("revoked");
    assert_eq!(own.into_inner().sessions_revoked, 1);
    let verified = login
        .verify(pb::VerifyRequest {
            token: tokens.access_token.clone(),
            audience: "wiki-a".into(),
        })
        .await
        .expect_err("revoked");
    assert_eq!(verified.code(), Code::Unauthenticated);
    let unknown = login
        .revoke(by("wiki-a"))
        .await
        .expect("RFC 7009: no error");
    assert_eq!(unknown.into_inner().sessions_revoked, 0);
}

/// The refresh token carries its grant sealed: an exchange reads nothing from the stash
/// first and commits once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_is_one_stash_commit_with_nothing_read_first() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let before = stash_calls(&stack).await;
    login
        .refresh(refresh(&tokens.refresh_token))
        .await
        .expect("refreshed");
    let after = stash_calls(&stack).await;
    let made: Vec<_> = after
        .iter()
        .filter(|(rpc, count)| before.get(*rpc) != Some(count))
        .map(|(rpc, count)| (rpc.as_str(), count - before.get(rpc).unwrap_or(&0)))
        .collect();
    assert_eq!(made, vec![("Apply", 1)], "stash calls of one refresh");
}

/// What the stash answered, by method, leaving out the revocation poll's lists, which
/// run on their own schedule.
async fn stash_calls(stack: &crate::support::Stack) -> std::collections::BTreeMap<String, u64> {
    let metrics = tessera_testkit::http_get(stack.stash.admin_addr, "/metrics")
        .await
        .expect("stash metrics")
        .body;
    let mut calls = std::collections::BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) =
            line.strip_prefix("tessera_grpc_requests_total{rpc=\"/tessera.stash.v1.TokenStash/")
        else {
            continue;
        };
        let (rpc, rest) = rest.split_once('"').expect("rpc label");
        let count: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("count");
        if rpc != "ListByOwner" {
            *calls.entry(rpc.to_owned()).or_default() += count;
        }
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_tampered_or_oversized_refresh_token_is_unknown_and_rotates_nothing() {
    let stack = stack().await;
    let mut login = stack.login().await;
    let tokens = login
        .issue(issue("user-1", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let genuine = &tokens.refresh_token;
    let (home, body) = genuine.split_once('.').expect("homed");
    let mut flipped = body.as_bytes().to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{home}.{}", String::from_utf8(flipped).expect("ascii"));
    let truncated = &genuine[..genuine.len() - 4];
    let oversized = format!("{home}.{}", "A".repeat(5000));
    let spliced = format!("{home}.{}{}", &body[..40], &body[..body.len() - 40]);
    for forged in [&flipped, truncated, &oversized, &spliced] {
        let status = login
            .refresh(refresh(forged))
            .await
            .expect_err("not a token this deployment sealed");
        assert_eq!(status.code(), Code::NotFound, "{forged}: {status:?}");
        assert_eq!(
            tessera_service::code_of(&status),
            Some("unknown_refresh_token"),
            "{status:?}"
        );
        assert!(status.message().contains("sign in again"), "{status:?}");
    }
    let renewed = login
        .refresh(refresh(genuine))
        .await
        .expect("the genuine token was not spent by the forgeries")
        .into_inner();
    login
        .refresh(refresh(&renewed.refresh_token))
        .await
        .expect("and its successor works");
}
