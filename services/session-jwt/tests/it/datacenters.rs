//! Two datacenters, each a stash and a session service, linked stash to stash and session
//! service to session service through links the test can part. A session minted in one
//! is verified, refreshed and revoked in the other; one refresh token is exchanged at its
//! home only; revocations cross in both directions, survive a partition and a restart.

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_clock::ManualClock;
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::revoke_request::Scope;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_session_jwt::config::{PeerConfig, SessionConfig};
use tessera_session_jwt::server::Listeners;
use tessera_session_jwt::test_util::SessionHarness;
use tessera_testkit::{wait_until, Link, TestPki};
use tessera_token_stash::test_util::StashHarness;
use tessera_verify::grpc::SessionServiceSource;
use tessera_verify::{Jwks, Verifier, VerifierConfig, VerifyError};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::support::{issue, refresh, wait_for_event};

/// One datacenter: its stash, its session service (restartable), and the link others
/// reach its session service through.
struct Datacenter {
    name: &'static str,
    stash: StashHarness,
    session: Option<SessionHarness>,
    keys_dir: std::path::PathBuf,
}

struct TwoDatacenters {
    a: Datacenter,
    b: Datacenter,
    pki: Arc<TestPki>,
    clock: ManualClock,
    state: tempfile::TempDir,
    /// B's view of A's session service, and A's of B's.
    to_a: Link,
    to_b: Link,
    /// The stashes' links to each other.
    stash_to_a: Link,
    stash_to_b: Link,
}

async fn two_datacenters() -> TwoDatacenters {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let clock = ManualClock::starting_now();
    let state = tempfile::tempdir().expect("state dir");

    let (stash_listeners_a, stash_listeners_b) = (
        StashHarness::bind().await.expect("bind"),
        StashHarness::bind().await.expect("bind"),
    );
    let stash_to_a = Link::to(stash_listeners_a.main.local_addr().expect("addr"))
        .await
        .expect("link");
    let stash_to_b = Link::to(stash_listeners_b.main.local_addr().expect("addr"))
        .await
        .expect("link");
    let stash = |dc: &str, peer: &str, via: &Link, listeners| {
        StashHarness::builder(pki.clone())
            .datacenter(dc)
            .peer(peer, via.addr())
            .clock(clock.shared())
            .listeners(listeners)
            .start()
    };
    let stash_a = stash("dc-a", "dc-b", &stash_to_b, stash_listeners_a)
        .await
        .expect("stash a");
    let stash_b = stash("dc-b", "dc-a", &stash_to_a, stash_listeners_b)
        .await
        .expect("stash b");

    let (session_listeners_a, session_listeners_b) = (
        Listeners::loopback().await.expect("bind"),
        Listeners::loopback().await.expect("bind"),
    );
    let to_a = Link::to(session_listeners_a.main.local_addr().expect("addr"))
        .await
        .expect("link");
    let to_b = Link::to(session_listeners_b.main.local_addr().expect("addr"))
        .await
        .expect("link");

    let mut dcs = TwoDatacenters {
        a: Datacenter {
            name: "dc-a",
            stash: stash_a,
            session: None,
            keys_dir: state.path().join("keys-a"),
        },
        b: Datacenter {
            name: "dc-b",
            stash: stash_b,
            session: None,
            keys_dir: state.path().join("keys-b"),
        },
        pki,
        clock,
        state,
        to_a,
        to_b,
        stash_to_a,
        stash_to_b,
    };
    dcs.start_session(Side::A, session_listeners_a).await;
    dcs.start_session(Side::B, session_listeners_b).await;
    dcs
}

#[derive(Clone, Copy)]
enum Side {
    A,
    B,
}

impl TwoDatacenters {
    fn dc(&self, side: Side) -> &Datacenter {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    async fn start_session(&mut self, side: Side, listeners: Listeners) {
        let (dc, peer_name, peer_link) = match side {
            Side::A => (&self.a, self.b.name, &self.to_b),
            Side::B => (&self.b, self.a.name, &self.to_a),
        };
        let (name, keys_dir, stash_addr) = (dc.name, dc.keys_dir.clone(), dc.stash.grpc_addr);
        let secret = self.state.path().join("shared-secret.key");
        let peer_url = format!("https://{}", peer_link.addr());
        let adjust = move |config: &mut SessionConfig| {
            config.stash.datacenter = name.into();
            config.keys_dir = keys_dir;
            config.secret_file = secret;
            config
                .peers
                .insert(peer_name.into(), PeerConfig { url: peer_url });
        };
        let session = SessionHarness::start_on(
            listeners,
            self.pki.clone(),
            stash_addr,
            Some(self.clock.shared()),
            adjust,
        )
        .await
        .expect("session service starts");
        match side {
            Side::A => self.a.session = Some(session),
            Side::B => self.b.session = Some(session),
        }
    }

    fn session(&self, side: Side) -> &SessionHarness {
        self.dc(side).session.as_ref().expect("running")
    }

    async fn login(&self, side: Side) -> SessionJwtClient<Channel> {
        self.session(side).client("login").await.expect("client")
    }

    /// The kids side `side` publishes.
    async fn published_kids(&self, side: Side) -> Vec<String> {
        published(&mut self.login(side).await)
            .await
            .keys
            .into_iter()
            .map(|k| k.kid)
            .collect()
    }

    /// Waits until each side publishes the other's keys.
    async fn keys_exchanged(&self) {
        let own = |jwks: Jwks| jwks.keys.into_iter().map(|k| k.kid).collect::<Vec<_>>();
        let a_own = own(self.session(Side::A).sessions.own_jwks());
        let b_own = own(self.session(Side::B).sessions.own_jwks());
        wait_until("each datacenter to publish the other's keys", || async {
            let (a, b) = (
                self.published_kids(Side::A).await,
                self.published_kids(Side::B).await,
            );
            b_own.iter().all(|kid| a.contains(kid)) && a_own.iter().all(|kid| b.contains(kid))
        })
        .await;
    }

    /// A site's verifier fed by side `side`'s keys and revocation stream; each applied
    /// revocation is reported on the channel.
    async fn site_following(
        &self,
        side: Side,
        site: &str,
    ) -> (Arc<Verifier>, mpsc::UnboundedReceiver<()>) {
        let verifier = Arc::new(Verifier::new(VerifierConfig::new(site)));
        verifier.set_keys(&published(&mut self.login(side).await).await);
        let channel = self
            .pki
            .channel_to(
                &self.pki.files("login"),
                self.session(side).grpc_addr,
                "session-jwt",
            )
            .await
            .expect("channel");
        let source = SessionServiceSource::new(channel);
        let (applied, events) = mpsc::unbounded_channel();
        let following = verifier.clone();
        tokio::spawn(async move {
            source
                .follow(following, move || {
                    let _ = applied.send(());
                })
                .await
        });
        (verifier, events)
    }

    fn partition(&self) {
        for link in [&self.to_a, &self.to_b, &self.stash_to_a, &self.stash_to_b] {
            link.partition();
        }
    }

    fn heal(&self) {
        for link in [&self.to_a, &self.to_b, &self.stash_to_a, &self.stash_to_b] {
            link.heal();
        }
    }
}

async fn published(client: &mut SessionJwtClient<Channel>) -> Jwks {
    let json = client
        .get_jwks(pb::GetJwksRequest::default())
        .await
        .expect("jwks")
        .into_inner()
        .jwks_json;
    serde_json::from_str(&json).expect("jwks json")
}

fn revoke(scope: Scope) -> pb::RevokeRequest {
    pb::RevokeRequest {
        audience: String::new(),
        scope: Some(scope),
    }
}

fn is_revoked(verifier: &Verifier, token: &str, dcs: &TwoDatacenters) -> bool {
    matches!(
        verifier.verify(token, dcs.clock.shared().now()),
        Err(rejection) if matches!(rejection.error, VerifyError::Revoked(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_minted_in_one_datacenter_is_verified_refreshed_and_revoked_in_the_other() {
    let dcs = two_datacenters().await;
    dcs.keys_exchanged().await;
    let minted = dcs
        .login(Side::A)
        .await
        .issue(issue("alice", "wiki-a", ""))
        .await
        .expect("issued in dc-a")
        .into_inner();
    assert!(
        minted.refresh_token.starts_with("dc-a."),
        "a refresh token names its home: {}",
        minted.refresh_token
    );

    // A site in B verifies it with B's published keys, no call to A.
    let (site_in_b, mut applied_in_b) = dcs.site_following(Side::B, "wiki-a").await;
    site_in_b
        .verify(&minted.access_token, dcs.clock.shared().now())
        .expect("a dc-a session verifies with dc-b's published keys");

    // B refreshes it; the exchange is decided at A, and the new refresh token is homed
    // at A too, where the session's record lives.
    let renewed = dcs
        .login(Side::B)
        .await
        .refresh(refresh(&minted.refresh_token))
        .await
        .expect("dc-b refreshes a dc-a session")
        .into_inner();
    assert_eq!(renewed.session_id, minted.session_id);
    assert!(
        renewed.refresh_token.starts_with("dc-a."),
        "a refresh token stays homed with its session: {}",
        renewed.refresh_token
    );
    // A, asked for the same exchange within the grace window, answers with the same pair.
    let again_in_a = dcs
        .login(Side::A)
        .await
        .refresh(refresh(&minted.refresh_token))
        .await
        .expect("dc-a answers the same exchange")
        .into_inner();
    assert_eq!(again_in_a.refresh_token, renewed.refresh_token);
    assert_eq!(again_in_a.access_token, renewed.access_token);

    // B revokes it; B's site rejects it at once, and A's subscribers hear of it.
    let (site_in_a, _applied_in_a) = dcs.site_following(Side::A, "wiki-a").await;
    dcs.login(Side::B)
        .await
        .revoke(revoke(Scope::SessionId(minted.session_id.clone())))
        .await
        .expect("dc-b revokes a dc-a session");
    wait_for_event(&mut applied_in_b).await;
    wait_until("dc-a's site to hear of dc-b's revocation", || async {
        is_revoked(&site_in_a, &renewed.access_token, &dcs)
    })
    .await;
    assert!(is_revoked(&site_in_b, &renewed.access_token, &dcs));
    let status = dcs
        .login(Side::A)
        .await
        .refresh(refresh(&renewed.refresh_token))
        .await
        .expect_err("a revoked session is not refreshed anywhere");
    assert_eq!(
        tessera_service::code_of(&status),
        Some("session_ended"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_in_both_datacenters_all_get_the_one_pair_decided_at_home() {
    let dcs = two_datacenters().await;
    let minted = dcs
        .login(Side::A)
        .await
        .issue(issue("bob", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let mut racers = Vec::new();
    for i in 0..40 {
        let side = if i % 2 == 0 { Side::A } else { Side::B };
        let mut client = dcs.login(side).await;
        let token = minted.refresh_token.clone();
        racers.push(tokio::spawn(async move {
            client
                .refresh(refresh(&token))
                .await
                .map(|r| r.into_inner())
        }));
    }
    let mut pairs = std::collections::BTreeSet::new();
    for racer in racers {
        let pair = racer.await.expect("task").expect("refresh succeeds");
        pairs.insert((pair.access_token, pair.refresh_token));
    }
    assert_eq!(
        pairs.len(),
        1,
        "40 refreshes across two datacenters, one pair"
    );
}

/// A refresh token from before refresh tokens were homed with their session: minted in
/// dc-b for a session whose record lives in dc-a, its grant without a copy of the record.
/// Its refresh cannot be one commit, so it runs step by step, and still rotates once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_of_the_older_layout_spanning_both_datacenters_still_rotates_once() {
    use prost::Message as _;
    let dcs = two_datacenters().await;
    let minted = dcs
        .login(Side::A)
        .await
        .issue(issue("olga", "wiki-a", ""))
        .await
        .expect("issued")
        .into_inner();
    let sessions_b = &dcs.b.session.as_ref().expect("dc-b running").sessions;
    let mut stash_b = dcs.b.stash.client("session-jwt").await.expect("stash");
    let record_token = sessions_b.session_record_token("dc-a", &minted.session_id);

    // What an older release stored: a dc-b refresh token, its grant in dc-b naming the
    // record in dc-a, and no copy of the record.
    let legacy = "dc-b.b2xkZXItbGF5b3V0LXJlZnJlc2gtdG9r";
    let legacy_grant = pb::RefreshGrant {
        session_record: record_token,
        session_id: minted.session_id.clone(),
        generation: 0,
        record: None,
    };
    let mut put = tessera_token_stash::test_util::put_request(
        "refresh",
        legacy_grant.encode_to_vec(),
        600,
        false,
        "",
    );
    put.token = sessions_b
        .refresh_record_token("refresh", legacy)
        .expect("legacy grant token");
    stash_b.put(put).await.expect("legacy grant stored");

    let renewed = dcs
        .login(Side::B)
        .await
        .refresh(refresh(legacy))
        .await
        .expect("an older refresh token is still honoured")
        .into_inner();
    assert_eq!(renewed.session_id, minted.session_id);
    assert!(
        renewed.refresh_token.starts_with("dc-a."),
        "the renewed token is homed with its session: {}",
        renewed.refresh_token
    );
    let again = dcs
        .login(Side::A)
        .await
        .refresh(refresh(legacy))
        .await
        .expect("a retry inside the grace window")
        .into_inner();
    assert_eq!(
        (again.access_token, again.refresh_token.clone()),
        (renewed.access_token, renewed.refresh_token.clone()),
        "one rotation, answered to every caller"
    );
    dcs.login(Side::B)
        .await
        .refresh(refresh(&renewed.refresh_token))
        .await
        .expect("the renewed token refreshes in one commit at home");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_in_one_datacenter_ends_the_site_sessions_derived_in_the_other() {
    let dcs = two_datacenters().await;
    dcs.keys_exchanged().await;
    let central = dcs
        .login(Side::A)
        .await
        .issue(issue("carol", "login", ""))
        .await
        .expect("central session in dc-a")
        .into_inner();
    // Single sign-on in B: a site session derived from A's central session.
    let site_session = dcs
        .login(Side::B)
        .await
        .issue(issue("carol", "wiki-b", &central.session_id))
        .await
        .expect("dc-b derives a site session from dc-a's central session")
        .into_inner();
    let (site_in_b, _applied) = dcs.site_following(Side::B, "wiki-b").await;
    site_in_b
        .verify(&site_session.access_token, dcs.clock.shared().now())
        .expect("valid before sign-out");

    dcs.login(Side::A)
        .await
        .revoke(revoke(Scope::SessionFamilyId(central.session_id.clone())))
        .await
        .expect("sign-out in dc-a");
    wait_until("dc-b's site to reject the derived session", || async {
        is_revoked(&site_in_b, &site_session.access_token, &dcs)
    })
    .await;
    let status = dcs
        .login(Side::B)
        .await
        .refresh(refresh(&site_session.refresh_token))
        .await
        .expect_err("the derived session ended in dc-b too");
    assert_eq!(tessera_service::code_of(&status), Some("session_ended"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_made_during_a_partition_arrive_after_it_heals_and_survive_a_restart() {
    let mut dcs = two_datacenters().await;
    dcs.keys_exchanged().await;
    let login_a = dcs.login(Side::A).await;
    let mut sessions = Vec::new();
    for user in ["dave", "erin"] {
        sessions.push(
            login_a
                .clone()
                .issue(issue(user, "wiki-a", ""))
                .await
                .expect("issued")
                .into_inner(),
        );
    }
    let (site_in_b, _applied) = dcs.site_following(Side::B, "wiki-a").await;

    dcs.partition();
    // Both made in A while B cannot hear: one session, and everything of one user.
    login_a
        .clone()
        .revoke(revoke(Scope::SessionId(sessions[0].session_id.clone())))
        .await
        .expect("revocations stay available in a partition");
    login_a
        .clone()
        .revoke(revoke(Scope::UserId("erin".into())))
        .await
        .expect("revocations stay available in a partition");
    // What could be exchanged twice fails closed, naming the unreachable datacenter;
    // what is local stays available.
    let status = dcs
        .login(Side::B)
        .await
        .refresh(refresh(&sessions[1].refresh_token))
        .await
        .expect_err("dc-b cannot decide a dc-a exchange");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("dc-a"), "{status:?}");
    let local = dcs
        .login(Side::B)
        .await
        .issue(issue("frank", "wiki-a", ""))
        .await
        .expect("sign-ins local to dc-b keep working")
        .into_inner();
    dcs.login(Side::B)
        .await
        .refresh(refresh(&local.refresh_token))
        .await
        .expect("refreshes of dc-b sessions keep working");
    let now = dcs.clock.shared().now();
    assert!(
        sessions
            .iter()
            .all(|s| site_in_b.verify(&s.access_token, now).is_ok()),
        "dc-b cannot know yet"
    );

    dcs.heal();
    wait_until(
        "both partition revocations to reach dc-b's site",
        || async {
            sessions
                .iter()
                .all(|s| is_revoked(&site_in_b, &s.access_token, &dcs))
        },
    )
    .await;

    // B restarts while A is unreachable: what it took in is stored in B, not re-learned.
    dcs.partition();
    let listeners = Listeners::loopback().await.expect("bind");
    let old = dcs.b.session.take().expect("running");
    old.shutdown().await.expect("dc-b stops");
    dcs.start_session(Side::B, listeners).await;
    // Loaded at start, from B's own stash: the peer is unreachable.
    let feed = dcs.session(Side::B).sessions.revocations().clone();
    assert!(feed.session_revoked(&sessions[0].session_id));
    assert!(feed.revoked_by_epoch("erin", dcs.clock.shared().now().as_i64() - 1));
    let (restarted_site, _applied) = dcs.site_following(Side::B, "wiki-a").await;
    wait_until(
        "the restarted dc-b's site to replay both revocations",
        || async {
            sessions
                .iter()
                .all(|s| is_revoked(&restarted_site, &s.access_token, &dcs))
        },
    )
    .await;
    dcs.heal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_naming_an_unknown_datacenter_is_refused_without_forwarding() {
    let dcs = two_datacenters().await;
    let forwarded_before = forwarded_calls(dcs.b.stash.admin_addr).await;
    for forged in [
        "dc-zz.c29tZXRoaW5nIHJhbmRvbSBoZXJlIQ",
        "../etc.x",
        "dc-a-but-longer-than-any-datacenter-id-could-be.x",
    ] {
        let status = dcs
            .login(Side::B)
            .await
            .refresh(refresh(forged))
            .await
            .expect_err("refused");
        assert_eq!(
            tessera_service::code_of(&status),
            Some("unknown_datacenter"),
            "{forged}: {status:?}"
        );
        assert!(status.message().contains("sign in again"), "{status:?}");
    }
    assert_eq!(
        forwarded_calls(dcs.b.stash.admin_addr).await,
        forwarded_before,
        "nothing was forwarded for a datacenter nobody has"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_is_not_a_session_service_is_never_followed() {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let stash = StashHarness::builder(pki.clone())
        .datacenter("dc-b")
        .start()
        .await
        .expect("stash");
    // B's peer "dc-a" is, in truth, a token stash: it proves the wrong identity.
    let impostor: SocketAddr = stash.grpc_addr;
    let session = SessionHarness::start(pki.clone(), stash.grpc_addr, None, |config| {
        config.stash.datacenter = "dc-b".into();
        config.peers.insert(
            "dc-a".into(),
            PeerConfig {
                url: format!("https://{impostor}"),
            },
        );
    })
    .await
    .expect("starts");
    let peer = tessera_session_jwt::peers::PeerSessions::connect(
        "dc-a",
        &PeerConfig {
            url: format!("https://{impostor}"),
        },
        &pki.files("session-jwt"),
    )
    .expect("client");
    let err = peer
        .fetch_keys(&session.sessions)
        .await
        .expect_err("an impostor's keys are never taken in");
    assert!(err.to_string().contains("dc-a"), "{err}");
    assert_eq!(
        session.sessions.jwks(),
        session.sessions.own_jwks(),
        "only dc-b's own keys are published"
    );
}

async fn forwarded_calls(admin: SocketAddr) -> f64 {
    let metrics = tessera_testkit::http_get(admin, "/metrics")
        .await
        .expect("metrics")
        .body;
    tessera_testkit::metric_sum(&metrics, "tessera_stash_forwarded_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_revocation_lasting_forever_is_kept_only_as_long_as_a_session_can_live() {
    let dcs = two_datacenters().await;
    let b = &dcs.session(Side::B).sessions;
    let forever = tessera_session_jwt::revocation::Revocation {
        event: tessera_verify::RevocationEvent::Sessions {
            sids: vec!["a-session".into()],
            until: tessera_clock::UnixMillis(u64::MAX / 2),
        },
        origin: "dc-a".into(),
    };
    // Stored (the stash refuses entries over a day) and in force, not a stuck follower.
    assert!(b
        .take_in_from_peer(forever.clone())
        .await
        .expect("taken in"));
    assert!(b.revocations().session_revoked("a-session"));
    assert!(
        !b.take_in_from_peer(forever).await.expect("a repeat"),
        "taken in once"
    );
}
