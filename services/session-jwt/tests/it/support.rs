//! A stash and a session service on loopback, driven by one manual clock, and a site's
//! verifier that follows the revocation stream.

use std::sync::Arc;

use tessera_clock::ManualClock;
use tessera_proto::session::v1 as pb;
use tessera_proto::session::v1::session_jwt_client::SessionJwtClient;
use tessera_session_jwt::config::SessionConfig;
use tessera_session_jwt::test_util::SessionHarness;
use tessera_testkit::TestPki;
use tessera_token_stash::test_util::StashHarness;
use tessera_verify::grpc::SessionServiceSource;
use tessera_verify::{Jwks, Verifier, VerifierConfig};
use tokio::sync::mpsc;
use tonic::transport::Channel;

pub struct Stack {
    pub session: SessionHarness,
    pub pki: Arc<TestPki>,
    pub clock: ManualClock,
    pub stash: StashHarness,
}

pub async fn stack() -> Stack {
    stack_with(|_| {}).await
}

pub async fn stack_with(adjust: impl FnOnce(&mut SessionConfig)) -> Stack {
    let pki = Arc::new(TestPki::new().expect("pki"));
    let clock = ManualClock::starting_now();
    let stash = StashHarness::builder(pki.clone())
        .clock(clock.shared())
        .start()
        .await
        .expect("stash starts");
    let session = SessionHarness::start(pki.clone(), stash.grpc_addr, Some(clock.shared()), adjust)
        .await
        .expect("session service starts");
    Stack {
        session,
        pki,
        clock,
        stash,
    }
}

impl Stack {
    pub async fn login(&self) -> SessionJwtClient<Channel> {
        self.session.client("login").await.expect("client")
    }

    /// A site's verifier with the service's published keys.
    pub async fn site_verifier(&self, site: &str) -> Arc<Verifier> {
        let verifier = Arc::new(Verifier::new(VerifierConfig::new(site)));
        let jwks = self
            .login()
            .await
            .get_jwks(pb::GetJwksRequest::default())
            .await
            .expect("jwks")
            .into_inner()
            .jwks_json;
        verifier.set_keys(&serde_json::from_str::<Jwks>(&jwks).expect("jwks json"));
        verifier
    }

    /// Feeds `verifier` from the revocation stream with the follower sites use; each
    /// applied event is reported on the returned channel, so tests wait for events
    /// instead of sleeping.
    pub async fn follow(&self, verifier: Arc<Verifier>) -> mpsc::UnboundedReceiver<()> {
        let source = self.source().await;
        let (applied, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            source
                .follow(verifier, move || {
                    let _ = applied.send(());
                })
                .await
        });
        events
    }

    /// The session service as a site's source of keys and revocations.
    pub async fn source(&self) -> SessionServiceSource {
        let channel = self
            .pki
            .channel_to(
                &self.pki.files("login"),
                self.session.grpc_addr,
                "session-jwt",
            )
            .await
            .expect("channel");
        SessionServiceSource::new(channel)
    }
}

pub fn issue(user: &str, audience: &str, parent: &str) -> pb::IssueRequest {
    pb::IssueRequest {
        user_id: user.into(),
        user_name: String::new(),
        audience: audience.into(),
        parent_session_id: parent.into(),
    }
}

pub fn refresh(token: &str) -> pb::RefreshRequest {
    pb::RefreshRequest {
        refresh_token: token.into(),
        audience: String::new(),
    }
}

pub async fn wait_for_event(events: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(tessera_testkit::WAIT_LIMIT, events.recv())
        .await
        .expect("a revocation event arrives")
        .expect("stream open");
}
