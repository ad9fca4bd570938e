//! The backend conformance suite: every case runs against the embedded store and against
//! a real Redis, through the same `Stash` API, with time driven by a manual clock.

use std::collections::BTreeSet;
use std::sync::Arc;
use tessera_token_stash::ServiceError as _;

use tessera_token_stash::store::{
    EmbeddedStore, EmbeddedStoreOptions, RedisStore, RedisStoreOptions, Store,
};
use tessera_token_stash::{ApplyInput, Namespace, Owner, Stash, StashError, StashMetrics};

use crate::support::{dc, for_each_backend, input, sealer, secs, Fixture, FIXTURE_CAPACITY};

for_each_backend!(embedded_fixture, redis_fixture:
    reusable_entries_are_readable_until_expiry_and_not_after,
    single_use_entries_are_taken_once_then_reported_consumed,
    take_is_exactly_once_under_contention,
    consumed_tokens_are_remembered_for_ten_minutes_then_unknown,
    expired_tokens_are_remembered_for_ten_minutes_then_unknown,
    wrong_kind_reads_are_refused_without_consuming,
    deleted_tokens_are_reported_as_deleted,
    list_by_owner_lists_only_live_entries,
    a_list_since_a_time_holds_only_live_entries_added_since,
    at_capacity_puts_fail_and_stored_entries_are_untouched,
    expired_entries_never_count_against_capacity,
    stats_count_live_entries_and_bytes,
    purge_removes_expired_entries_from_every_index,
    unknown_tokens_are_not_found,
    a_chosen_token_is_stored_only_if_absent,
    apply_stores_every_put_when_every_check_passes,
    apply_refused_anywhere_writes_nothing,
    apply_at_capacity_writes_nothing,
    apply_rejects_batches_it_cannot_judge,
    get_many_reads_each_entry_or_says_why_not,
);

async fn reusable_entries_are_readable_until_expiry_and_not_after<S: Store>(f: Fixture<S>) {
    let (token, expires_at) = f
        .stash
        .put(input("session", b"state", 10, false, ""))
        .await
        .expect("put");
    assert_eq!(expires_at, f.clock.shared().now().saturating_add(secs(10)));

    f.clock.advance(std::time::Duration::from_millis(9_999));
    let entry = f
        .stash
        .get(&token)
        .await
        .expect("readable just before expiry");
    assert_eq!(entry.value, b"state");
    assert_eq!(entry.namespace, "session");
    assert_eq!(
        f.stash
            .get(&token)
            .await
            .expect("get does not consume")
            .value,
        b"state"
    );

    f.clock.advance(std::time::Duration::from_millis(1));
    let err = f
        .stash
        .get(&token)
        .await
        .expect_err("expired at expires_at");
    assert!(
        matches!(err, StashError::Expired { at } if at == expires_at),
        "{err:?}"
    );
}

async fn single_use_entries_are_taken_once_then_reported_consumed<S: Store>(f: Fixture<S>) {
    let (token, _) = f
        .stash
        .put(input("code", b"grant", 60, true, "user-1"))
        .await
        .expect("put");
    let entry = f.stash.take(&token).await.expect("first take wins");
    assert_eq!(entry.value, b"grant");
    assert_eq!(entry.owner, "user-1");
    let err = f.stash.take(&token).await.expect_err("second take loses");
    assert!(matches!(err, StashError::Consumed { .. }), "{err:?}");
    assert!(err.to_string().contains("consumed"), "{err}");
}

async fn take_is_exactly_once_under_contention<S: Store>(f: Fixture<S>) {
    let stash = Arc::new(f.stash);
    for round in 0..200 {
        let (token, _) = stash
            .put(input("code", b"x", 60, true, ""))
            .await
            .expect("put");
        let racers: Vec<_> = (0..64)
            .map(|_| {
                let (stash, token) = (stash.clone(), token.clone());
                tokio::spawn(async move { stash.take(&token).await })
            })
            .collect();
        let (mut winners, mut consumed) = (0, 0);
        for racer in racers {
            match racer.await.expect("task") {
                Ok(_) => winners += 1,
                Err(StashError::Consumed { .. }) => consumed += 1,
                Err(other) => panic!("round {round}: unexpected {other:?}"),
            }
        }
        assert_eq!((winners, consumed), (1, 63), "round {round}");
    }
}

async fn consumed_tokens_are_remembered_for_ten_minutes_then_unknown<S: Store>(f: Fixture<S>) {
    let (token, _) = f
        .stash
        .put(input("code", b"x", 60, true, ""))
        .await
        .expect("put");
    f.stash.take(&token).await.expect("taken");
    f.clock.advance(secs(599));
    f.stash.purge_expired().await.expect("purge");
    assert!(matches!(
        f.stash.take(&token).await,
        Err(StashError::Consumed { .. })
    ));
    f.clock.advance(secs(2));
    f.stash.purge_expired().await.expect("purge");
    assert!(matches!(
        f.stash.take(&token).await,
        Err(StashError::NotFound)
    ));
}

async fn expired_tokens_are_remembered_for_ten_minutes_then_unknown<S: Store>(f: Fixture<S>) {
    let (code, _) = f
        .stash
        .put(input("code", b"x", 1, true, ""))
        .await
        .expect("put");
    let (session, _) = f
        .stash
        .put(input("session", b"x", 1, false, ""))
        .await
        .expect("put");
    f.clock.advance(secs(1));
    assert!(matches!(
        f.stash.take(&code).await,
        Err(StashError::Expired { .. })
    ));
    f.stash.purge_expired().await.expect("purge");
    assert!(matches!(
        f.stash.get(&session).await,
        Err(StashError::Expired { .. })
    ));
    f.clock.advance(secs(599));
    f.stash.purge_expired().await.expect("purge");
    assert!(matches!(
        f.stash.take(&code).await,
        Err(StashError::Expired { .. })
    ));
    f.clock.advance(secs(2));
    f.stash.purge_expired().await.expect("purge");
    assert!(matches!(
        f.stash.take(&code).await,
        Err(StashError::NotFound)
    ));
    assert!(matches!(
        f.stash.get(&session).await,
        Err(StashError::NotFound)
    ));
}

async fn wrong_kind_reads_are_refused_without_consuming<S: Store>(f: Fixture<S>) {
    let (session, _) = f
        .stash
        .put(input("session", b"s", 60, false, ""))
        .await
        .expect("put");
    let (code, _) = f
        .stash
        .put(input("code", b"c", 60, true, ""))
        .await
        .expect("put");
    assert!(matches!(
        f.stash.take(&session).await,
        Err(StashError::WrongKind {
            use_instead: "Get",
            ..
        })
    ));
    assert!(matches!(
        f.stash.get(&code).await,
        Err(StashError::WrongKind {
            use_instead: "Take",
            ..
        })
    ));
    assert_eq!(
        f.stash.get(&session).await.expect("still there").value,
        b"s"
    );
    assert_eq!(f.stash.take(&code).await.expect("still there").value, b"c");
}

async fn deleted_tokens_are_reported_as_deleted<S: Store>(f: Fixture<S>) {
    let (token, _) = f
        .stash
        .put(input("session", b"s", 60, false, ""))
        .await
        .expect("put");
    assert!(f.stash.delete(&token).await.expect("delete"));
    assert!(matches!(
        f.stash.get(&token).await,
        Err(StashError::Deleted)
    ));
    assert!(
        !f.stash.delete(&token).await.expect("second delete"),
        "nothing left to delete"
    );
}

async fn list_by_owner_lists_only_live_entries<S: Store>(f: Fixture<S>) {
    let put = |ns: &'static str, ttl, single_use, owner: &'static str| {
        let stash = &f.stash;
        async move {
            stash
                .put(input(ns, b"v", ttl, single_use, owner))
                .await
                .expect("put")
                .0
        }
    };
    let kept = put("session", 3600, false, "alice").await;
    let kept_code = put("session", 3600, true, "alice").await;
    let taken = put("session", 3600, true, "alice").await;
    let deleted = put("session", 3600, false, "alice").await;
    let expiring = put("session", 5, false, "alice").await;
    put("session", 3600, false, "bob").await;
    put("code", 3600, true, "alice").await;

    f.stash.take(&taken).await.expect("taken");
    f.stash.delete(&deleted).await.expect("deleted");
    f.clock.advance(secs(5));

    let namespace = Namespace::try_from("session").expect("ns");
    let alice = Owner::try_from("alice").expect("owner");
    let before_purge: BTreeSet<String> = f
        .stash
        .list_by_owner(&namespace, &alice)
        .await
        .expect("list")
        .iter()
        .map(|t| t.expose().to_owned())
        .collect();
    let expected: BTreeSet<String> =
        [kept.expose().to_owned(), kept_code.expose().to_owned()].into();
    assert_eq!(
        before_purge, expected,
        "expired entries are not listed even before purge"
    );
    assert!(!before_purge.contains(expiring.expose()));

    f.stash.purge_expired().await.expect("purge");
    let after_purge: BTreeSet<String> = f
        .stash
        .list_by_owner(&namespace, &alice)
        .await
        .expect("list")
        .iter()
        .map(|t| t.expose().to_owned())
        .collect();
    assert_eq!(after_purge, expected);
    for token in f
        .stash
        .list_by_owner(&namespace, &alice)
        .await
        .expect("list")
    {
        assert!(
            f.stash.get(&token).await.is_ok() || f.stash.take(&token).await.is_ok(),
            "listed tokens are usable"
        );
    }
}

/// How a follower (a session replica reading revocations) sees only what is new.
async fn a_list_since_a_time_holds_only_live_entries_added_since<S: Store>(f: Fixture<S>) {
    let put = |ttl, single_use, owner: &'static str| {
        let stash = &f.stash;
        async move {
            stash
                .put(input("revoked", b"v", ttl, single_use, owner))
                .await
                .expect("put")
                .0
        }
    };
    let names = |tokens: &[tessera_token_stash::Token]| -> BTreeSet<String> {
        tokens.iter().map(|t| t.expose().to_owned()).collect()
    };
    let old = put(3600, false, "all").await;
    f.clock.advance(secs(10));
    let since = f.clock.shared().now();
    let added = put(3600, false, "all").await;
    let applied = chosen("since");
    f.stash
        .apply(vec![ApplyInput::Put(
            input("revoked", b"v", 3600, false, "all").with_token(applied.clone()),
        )])
        .await
        .expect("applied");
    let expiring = put(5, false, "all").await;
    let taken = put(3600, true, "all").await;
    let deleted = put(3600, false, "all").await;
    put(3600, false, "someone-else").await;
    f.stash.take(&taken).await.expect("taken");
    f.stash.delete(&deleted).await.expect("deleted");

    let namespace = Namespace::try_from("revoked").expect("ns");
    let all = Owner::try_from("all").expect("owner");
    let (listed, next_since) = f
        .stash
        .list_since(&namespace, &all, Some(since))
        .await
        .expect("list since");
    assert_eq!(
        names(&listed),
        names(&[added.clone(), applied.clone(), expiring.clone()]),
        "only what was added since, and still there"
    );
    let now = f.clock.shared().now();
    assert_eq!(
        next_since.0,
        now.0 - tessera_token_stash::LIST_OVERLAP.as_millis() as u64
    );

    f.clock.advance(secs(5));
    let (listed, _) = f
        .stash
        .list_since(&namespace, &all, Some(since))
        .await
        .expect("list since");
    assert_eq!(
        names(&listed),
        names(&[added.clone(), applied.clone()]),
        "an expired entry is not listed, purged or not"
    );
    f.stash.purge_expired().await.expect("purge");
    let (listed, _) = f
        .stash
        .list_since(&namespace, &all, Some(since))
        .await
        .expect("list since");
    assert_eq!(names(&listed), names(&[added.clone(), applied.clone()]));
    let (listed, _) = f
        .stash
        .list_since(&namespace, &all, None)
        .await
        .expect("full list");
    assert_eq!(
        names(&listed),
        names(&[old, added, applied]),
        "without a time, everything live"
    );
    let (listed, _) = f
        .stash
        .list_since(&namespace, &all, Some(f.clock.shared().now()))
        .await
        .expect("list since now");
    assert!(listed.is_empty(), "nothing added since now: {listed:?}");
}

async fn at_capacity_puts_fail_and_stored_entries_are_untouched<S: Store>(f: Fixture<S>) {
    let mut tokens = Vec::new();
    for i in 0..FIXTURE_CAPACITY {
        let value = format!("value-{i}");
        tokens.push((
            f.stash
                .put(input("session", value.as_bytes(), 600, false, ""))
                .await
                .expect("put")
                .0,
            value,
        ));
    }
    let err = f
        .stash
        .put(input("session", b"one too many", 600, false, ""))
        .await
        .expect_err("full");
    assert!(
        matches!(err, StashError::CapacityExhausted { capacity } if capacity == FIXTURE_CAPACITY),
        "{err:?}"
    );
    assert!(err.to_string().contains("no entry was evicted"), "{err}");
    for (token, value) in &tokens {
        assert_eq!(
            f.stash.get(token).await.expect("untouched").value,
            value.as_bytes()
        );
    }
    assert_eq!(
        f.stash.stats().await.expect("stats").live_entries,
        FIXTURE_CAPACITY
    );
}

async fn expired_entries_never_count_against_capacity<S: Store>(f: Fixture<S>) {
    for _ in 0..FIXTURE_CAPACITY {
        f.stash
            .put(input("code", b"x", 1, true, ""))
            .await
            .expect("put");
    }
    f.clock.advance(secs(1));
    // No purge has run: the put itself must not be refused because of expired entries.
    let (token, _) = f
        .stash
        .put(input("code", b"fresh", 60, true, ""))
        .await
        .expect("room again");
    assert_eq!(f.stash.take(&token).await.expect("taken").value, b"fresh");
}

async fn stats_count_live_entries_and_bytes<S: Store>(f: Fixture<S>) {
    let (a, _) = f
        .stash
        .put(input("code", &[0; 100], 60, true, ""))
        .await
        .expect("put");
    f.stash
        .put(input("session", &[0; 20], 60, false, "u"))
        .await
        .expect("put");
    f.stash
        .put(input("session", &[0; 3], 5, false, ""))
        .await
        .expect("put");
    let stats = f.stash.stats().await.expect("stats");
    assert_eq!(
        (stats.live_entries, stats.live_bytes, stats.capacity_entries),
        (3, 123, FIXTURE_CAPACITY)
    );
    f.stash.take(&a).await.expect("taken");
    f.clock.advance(secs(5));
    let stats = f.stash.stats().await.expect("stats");
    assert_eq!(
        (stats.live_entries, stats.live_bytes),
        (1, 20),
        "taken and expired entries are not live"
    );
}

async fn purge_removes_expired_entries_from_every_index<S: Store>(f: Fixture<S>) {
    f.stash
        .put(input("session", b"v", 1, false, "carol"))
        .await
        .expect("put");
    f.stash
        .put(input("code", b"v", 1, true, ""))
        .await
        .expect("put");
    f.clock.advance(secs(1));
    assert_eq!(f.stash.purge_expired().await.expect("purge"), 2);
    assert_eq!(
        f.stash.purge_expired().await.expect("purge"),
        0,
        "nothing left to purge"
    );
    let stats = f.stash.stats().await.expect("stats");
    assert_eq!((stats.live_entries, stats.live_bytes), (0, 0));
    let listed = f
        .stash
        .list_by_owner(
            &Namespace::try_from("session").expect("ns"),
            &Owner::try_from("carol").expect("o"),
        )
        .await
        .expect("list");
    assert!(listed.is_empty());
}

async fn a_chosen_token_is_stored_only_if_absent<S: Store>(f: Fixture<S>) {
    let chosen = || {
        tessera_token_stash::Token::try_from("dc1.Y2hvc2VuLWJ5LXRoZS1jYWxsZXI")
            .expect("well-formed")
    };
    let (token, _) = f
        .stash
        .put(input("result", b"first", 60, false, "").with_token(chosen()))
        .await
        .expect("absent: stored");
    assert_eq!(token.expose(), chosen().expose());
    let err = f
        .stash
        .put(input("result", b"second", 60, false, "").with_token(chosen()))
        .await
        .expect_err("present: refused");
    assert!(matches!(err, StashError::AlreadyExists), "{err:?}");
    assert_eq!(
        f.stash.get(&chosen()).await.expect("first kept").value,
        b"first"
    );

    // A token that was used stays used while it is remembered.
    f.stash.delete(&chosen()).await.expect("delete");
    let err = f
        .stash
        .put(input("result", b"third", 60, false, "").with_token(chosen()))
        .await
        .expect_err("remembered: refused");
    assert!(matches!(err, StashError::AlreadyExists), "{err:?}");

    let foreign = tessera_token_stash::Token::try_from("dc9.Y2hvc2VuLWJ5LXRoZS1jYWxsZXI")
        .expect("well-formed");
    let err = f
        .stash
        .put(input("result", b"x", 60, false, "").with_token(foreign))
        .await
        .expect_err("other datacenter");
    assert!(
        matches!(err, StashError::InvalidArgument { field: "token", .. }),
        "{err:?}"
    );
}

fn chosen(suffix: &str) -> tessera_token_stash::Token {
    tessera_token_stash::Token::try_from(format!("dc1.Y2hvc2VuLWJ5LXRoZS1jYWxs{suffix}").as_str())
        .expect("well-formed")
}

fn put_at(suffix: &str, value: &[u8], owner: &str) -> ApplyInput {
    ApplyInput::Put(input("session", value, 60, false, owner).with_token(chosen(suffix)))
}

async fn apply_stores_every_put_when_every_check_passes<S: Store>(f: Fixture<S>) {
    f.stash
        .put(input("session", b"parent", 60, false, "").with_token(chosen("parent")))
        .await
        .expect("parent stored");
    let expiries = f
        .stash
        .apply(vec![
            ApplyInput::Require(chosen("parent")),
            put_at("aaaa", b"one", "user-1"),
            put_at("bbbb", b"two", ""),
        ])
        .await
        .expect("applied");
    let expected = f.clock.shared().now().saturating_add(secs(60));
    assert_eq!(
        expiries,
        vec![expected, expected],
        "one expiry per put, in order"
    );
    assert_eq!(
        f.stash.get(&chosen("aaaa")).await.expect("first put").value,
        b"one"
    );
    assert_eq!(
        f.stash
            .get(&chosen("bbbb"))
            .await
            .expect("second put")
            .value,
        b"two"
    );
    let listed = f
        .stash
        .list_by_owner(
            &Namespace::try_from("session").expect("ns"),
            &Owner::try_from("user-1").expect("owner"),
        )
        .await
        .expect("list");
    assert_eq!(
        listed,
        vec![chosen("aaaa")],
        "an applied put is indexed by owner"
    );
    assert_eq!(f.stash.stats().await.expect("stats").live_entries, 3);
}

async fn apply_refused_anywhere_writes_nothing<S: Store>(f: Fixture<S>) {
    f.stash
        .put(input("session", b"taken", 60, false, "").with_token(chosen("used")))
        .await
        .expect("stored");
    // A put that collides, after one that would succeed: neither is written.
    let err = f
        .stash
        .apply(vec![
            put_at("fresh", b"x", "user-1"),
            put_at("used", b"y", ""),
        ])
        .await
        .expect_err("a collision refuses the batch");
    assert!(
        matches!(&err, StashError::InOperation { index: 1, refusal } if matches!(**refusal, StashError::AlreadyExists)),
        "{err:?}"
    );
    assert_eq!(
        err.code(),
        "already_exists",
        "the refusal keeps its stable code"
    );
    assert!(err.to_string().contains("operation 1"), "{err}");
    assert!(
        matches!(
            f.stash.get(&chosen("fresh")).await,
            Err(StashError::NotFound)
        ),
        "the put before the refusal was not written"
    );
    assert_eq!(
        f.stash.get(&chosen("used")).await.expect("kept").value,
        b"taken"
    );

    // A required entry that was deleted, or expired, refuses the batch the same way.
    f.stash.delete(&chosen("used")).await.expect("delete");
    let err = f
        .stash
        .apply(vec![
            put_at("fresh", b"x", ""),
            ApplyInput::Require(chosen("used")),
        ])
        .await
        .expect_err("a missing requirement refuses the batch");
    assert!(
        matches!(&err, StashError::InOperation { index: 1, refusal } if matches!(**refusal, StashError::Deleted)),
        "{err:?}"
    );
    f.stash
        .put(input("session", b"short", 1, false, "").with_token(chosen("short")))
        .await
        .expect("stored");
    f.clock.advance(secs(1));
    let err = f
        .stash
        .apply(vec![
            ApplyInput::Require(chosen("short")),
            put_at("fresh", b"x", ""),
        ])
        .await
        .expect_err("an expired requirement refuses the batch");
    assert!(
        matches!(&err, StashError::InOperation { index: 0, refusal } if matches!(**refusal, StashError::Expired { .. })),
        "{err:?}"
    );
    let err = f
        .stash
        .apply(vec![ApplyInput::Require(chosen("never"))])
        .await
        .expect_err("an unknown requirement");
    assert_eq!(err.code(), "not_found");
    assert!(matches!(
        f.stash.get(&chosen("fresh")).await,
        Err(StashError::NotFound)
    ));
    assert_eq!(f.stash.stats().await.expect("stats").live_entries, 0);
}

async fn apply_at_capacity_writes_nothing<S: Store>(f: Fixture<S>) {
    for i in 0..FIXTURE_CAPACITY - 1 {
        f.stash
            .put(input("code", b"v", 60, true, ""))
            .await
            .unwrap_or_else(|e| panic!("put {i}: {e}"));
    }
    let err = f
        .stash
        .apply(vec![put_at("aaaa", b"one", ""), put_at("bbbb", b"two", "")])
        .await
        .expect_err("two puts do not fit in one free place");
    assert_eq!(err.code(), "capacity_exhausted", "{err:?}");
    assert!(
        matches!(
            f.stash.get(&chosen("aaaa")).await,
            Err(StashError::NotFound)
        ),
        "not even the put that would have fitted"
    );
    f.stash
        .apply(vec![put_at("aaaa", b"one", "")])
        .await
        .expect("one put fits");
}

async fn apply_rejects_batches_it_cannot_judge<S: Store>(f: Fixture<S>) {
    let refusal =
        |ops: Vec<ApplyInput>| async { f.stash.apply(ops).await.expect_err("refused").code() };
    assert_eq!(refusal(vec![]).await, "invalid_argument", "empty");
    let seventeen = (0..17)
        .map(|i| put_at(&format!("n{i:03}"), b"v", ""))
        .collect();
    assert_eq!(refusal(seventeen).await, "invalid_argument", "too many");
    assert_eq!(
        refusal(vec![
            put_at("twice", b"a", ""),
            ApplyInput::Require(chosen("twice"))
        ])
        .await,
        "invalid_argument",
        "one token twice"
    );
    let foreign = tessera_token_stash::Token::try_from("dc9.Y2hvc2VuLWJ5LXRoZS1jYWxsZXI")
        .expect("well-formed");
    assert_eq!(
        refusal(vec![put_at("here", b"a", ""), ApplyInput::Require(foreign)]).await,
        "invalid_argument",
        "two datacenters"
    );
    let minted = ApplyInput::Put(input("session", b"v", 60, false, ""));
    assert_eq!(
        refusal(vec![minted]).await,
        "invalid_argument",
        "a put without a token"
    );
    assert_eq!(f.stash.stats().await.expect("stats").live_entries, 0);
}

async fn get_many_reads_each_entry_or_says_why_not<S: Store>(f: Fixture<S>) {
    f.stash
        .apply(vec![
            put_at("live", b"one", "user-1"),
            put_at("gone", b"two", ""),
        ])
        .await
        .expect("stored");
    f.stash.delete(&chosen("gone")).await.expect("delete");
    let (code, _) = f
        .stash
        .put(input("code", b"single", 60, true, ""))
        .await
        .expect("stored");
    let found = f
        .stash
        .get_many(&[chosen("live"), chosen("gone"), chosen("never"), code])
        .await
        .expect("read");
    assert_eq!(found.len(), 4);
    let entry = found[0].as_ref().expect("live entry");
    assert_eq!(
        (entry.value.as_slice(), entry.owner.as_str()),
        (&b"one"[..], "user-1")
    );
    let codes: Vec<_> = found[1..]
        .iter()
        .map(|r| r.as_ref().expect_err("absent").code())
        .collect();
    assert_eq!(codes, ["deleted", "not_found", "wrong_kind"]);
    assert_eq!(
        f.stash.get_many(&[]).await.expect_err("empty").code(),
        "invalid_argument"
    );
}

async fn unknown_tokens_are_not_found<S: Store>(f: Fixture<S>) {
    let stranger = tessera_token_stash::Token::mint(&dc()).expect("token");
    assert!(matches!(
        f.stash.take(&stranger).await,
        Err(StashError::NotFound)
    ));
    assert!(matches!(
        f.stash.get(&stranger).await,
        Err(StashError::NotFound)
    ));
    assert!(!f.stash.delete(&stranger).await.expect("delete of nothing"));
}

// Restarts differ per backend (reopening a directory versus reconnecting to a server):
// each test supplies how to open its store; the case is the same.

/// Stores a short-lived and a long-lived session, restarts, and checks that start-up
/// purged the short one from every index before anything was read.
async fn expired_entries_are_gone_after_restart<S, Open, Opening>(open: Open)
where
    S: Store,
    Open: Fn(tessera_clock::UnixMillis) -> Opening,
    Opening: std::future::Future<Output = S>,
{
    let clock = tessera_clock::ManualClock::starting_now();
    let sealer = sealer();
    let stash = |store| {
        Stash::new(
            store,
            dc(),
            sealer.clone(),
            clock.shared(),
            Arc::new(StashMetrics::new()),
        )
    };
    let before = stash(open(clock.shared().now()).await);
    let (short, _) = before
        .put(input("session", b"short", 5, false, "dave"))
        .await
        .expect("put");
    let (long, _) = before
        .put(input("session", b"long", 3600, false, "dave"))
        .await
        .expect("put");
    before.into_store().close().await;

    clock.advance(secs(10));
    let after = stash(open(clock.shared().now()).await);
    assert_eq!(
        after
            .store()
            .purge_expired(clock.shared().now())
            .await
            .expect("purge"),
        0,
        "start-up purge already ran"
    );
    assert_eq!(after.stats().await.expect("stats").live_entries, 1);
    assert!(matches!(
        after.get(&short).await,
        Err(StashError::Expired { .. })
    ));
    assert_eq!(after.get(&long).await.expect("survived").value, b"long");
    let listed = after
        .list_by_owner(
            &Namespace::try_from("session").expect("ns"),
            &Owner::try_from("dave").expect("o"),
        )
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|t| t.expose()).collect::<Vec<_>>(),
        vec![long.expose()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_expired_entries_are_gone_after_restart() {
    let dir = tempfile::tempdir().expect("dir");
    expired_entries_are_gone_after_restart(|now| {
        let options = EmbeddedStoreOptions::new(dir.path().join("data"));
        async move { EmbeddedStore::open(options, now).await.expect("open") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_expired_entries_are_gone_after_restart() {
    let redis = tessera_testkit::RedisServer::start().await.expect("redis");
    expired_entries_are_gone_after_restart(|now| {
        let options = RedisStoreOptions::new(redis.url());
        async move { RedisStore::open(options, now).await.expect("open") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_tombstones_are_bounded_in_number() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = tessera_clock::ManualClock::starting_now();
    let mut options = EmbeddedStoreOptions::new(dir.path());
    options.max_remembered = 3;
    let store = EmbeddedStore::open(options, clock.shared().now())
        .await
        .expect("open");
    let stash = Stash::new(
        store,
        dc(),
        sealer(),
        clock.shared(),
        Arc::new(StashMetrics::new()),
    );
    let mut taken = Vec::new();
    for _ in 0..5 {
        let (token, _) = stash
            .put(input("code", b"x", 60, true, ""))
            .await
            .expect("put");
        stash.take(&token).await.expect("take");
        taken.push(token);
        clock.advance(secs(1));
    }
    assert!(
        matches!(stash.take(&taken[0]).await, Err(StashError::NotFound)),
        "oldest forgotten"
    );
    assert!(
        matches!(stash.take(&taken[1]).await, Err(StashError::NotFound)),
        "oldest forgotten"
    );
    for token in &taken[2..] {
        assert!(
            matches!(stash.take(token).await, Err(StashError::Consumed { .. })),
            "newest remembered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_may_evict_is_refused_with_the_fix() {
    let redis = tessera_testkit::RedisServer::start_with_policy("allkeys-lru")
        .await
        .expect("redis");
    let err = RedisStore::open(
        RedisStoreOptions::new(redis.url()),
        tessera_clock::UnixMillis(0),
    )
    .await
    .expect_err("must refuse");
    assert!(
        matches!(err, StashError::RedisMayEvict { ref policy } if policy == "allkeys-lru"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("maxmemory-policy noeviction"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_out_of_memory_refuses_puts_and_keeps_every_entry() {
    let redis = tessera_testkit::RedisServer::start_with_limits("noeviction", "3mb")
        .await
        .expect("redis");
    let clock = tessera_clock::ManualClock::starting_now();
    let store = RedisStore::open(RedisStoreOptions::new(redis.url()), clock.shared().now())
        .await
        .expect("open");
    let stash = Stash::new(
        store,
        dc(),
        sealer(),
        clock.shared(),
        Arc::new(StashMetrics::new()),
    );
    let value = vec![7u8; 60 * 1024];
    let mut stored = Vec::new();
    let refusal = loop {
        match stash.put(input("code", &value, 600, true, "")).await {
            Ok((token, _)) => stored.push(token),
            Err(err) => break err,
        }
        assert!(stored.len() < 1_000, "Redis never filled up");
    };
    assert!(matches!(refusal, StashError::StoreFull(_)), "{refusal:?}");
    assert_eq!(refusal.to_status().code(), tonic::Code::ResourceExhausted);
    assert!(!stored.is_empty());
    // Every acknowledged entry is still there, and taking works at full memory.
    for token in &stored {
        assert_eq!(
            stash.take(token).await.expect("kept and takeable").value,
            value
        );
    }
    stash
        .put(input("code", &value, 600, true, ""))
        .await
        .expect("room again after takes");
}
