//! The site verifier fetches keys on an unknown `kid`, at most once per interval.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_clock::ManualClock;
use tessera_verify::{Jwks, KeySource, SiteVerifier, Verifier, VerifierConfig};

use crate::support::{claims, signer, NOW_SECS, SITE};

struct CountingSource {
    jwks: Jwks,
    fetches: AtomicUsize,
}

impl KeySource for CountingSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Jwks, String>> + Send + '_>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let jwks = self.jwks.clone();
        Box::pin(async move { Ok(jwks) })
    }
}

#[tokio::test]
async fn unknown_keys_are_fetched_at_most_once_per_interval() {
    let (known, forged) = (signer(1), signer(2));
    let source = Arc::new(CountingSource {
        jwks: Jwks {
            keys: vec![known.jwk()],
        },
        fetches: AtomicUsize::new(0),
    });
    let clock = ManualClock::starting_at(tessera_clock::UnixMillis(NOW_SECS * 1000));
    let site = SiteVerifier::new(
        Arc::new(Verifier::new(VerifierConfig::new(SITE))),
        source.clone(),
        clock.shared(),
        Duration::from_secs(60),
    );
    let good = known.sign(&claims("user-1", "sid-1"));
    site.verify(&good)
        .await
        .expect("fetched on first use, then verified");
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);

    let unknown = forged.sign(&claims("user-1", "sid-2"));
    clock.advance(Duration::from_secs(60));
    for _ in 0..100 {
        assert_eq!(
            site.verify(&unknown).await.expect_err("unknown").code(),
            "unknown_key"
        );
    }
    assert_eq!(
        source.fetches.load(Ordering::SeqCst),
        2,
        "a flood of unknown kids costs one fetch"
    );
    site.verify(&good).await.expect("known keys need no fetch");
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
}
