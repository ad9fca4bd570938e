//! Mutual TLS and per-RPC identity: only certificates from the Tessera CA get in, and only
//! identities the access policy names may call each RPC.

use tessera_mtls::TlsFiles;
use tessera_proto::stash::v1 as pb;
use tessera_proto::stash::v1::token_stash_client::TokenStashClient;
use tessera_token_stash::test_util::put_request;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

use crate::support::{served_embedded, Served};

fn a_put() -> pb::PutRequest {
    put_request("code", b"v".to_vec(), 60, true, "")
}

/// Tries one Put with a client configured by `tls`; the status if refused.
async fn put_with(s: &Served, tls: Option<ClientTlsConfig>) -> Result<(), tonic::Status> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", s.harness.grpc_addr))
        .expect("endpoint")
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).expect("tls config");
    }
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(err) => return Err(tonic::Status::unavailable(err.to_string())),
    };
    TokenStashClient::new(channel)
        .put(a_put())
        .await
        .map(|_| ())
}

async fn live_entries(s: &Served) -> u64 {
    let mut admin = s.harness.client("admin").await.expect("admin client");
    admin
        .stats(pb::StatsRequest {})
        .await
        .expect("stats")
        .into_inner()
        .live_entries
}

/// A plain tonic client presenting `files` (these tests are about what the server accepts).
fn client_tls(files: &TlsFiles) -> ClientTlsConfig {
    let read = |path: &std::path::Path| std::fs::read(path).expect("tls file");
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&files.ca_file)))
        .identity(Identity::from_pem(
            read(&files.cert_file),
            read(&files.key_file),
        ))
        .domain_name("token-stash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_are_refused() {
    let s = served_embedded().await;
    let refused = put_with(&s, None)
        .await
        .expect_err("plaintext must not get in");
    assert_ne!(refused.code(), Code::Ok);
    assert_eq!(live_entries(&s).await, 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_are_refused() {
    let s = served_embedded().await;
    let ca = std::fs::read(s.harness.pki().ca_file()).expect("ca");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("token-stash");
    put_with(&s, Some(tls))
        .await
        .expect_err("no client certificate");
    assert_eq!(live_entries(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_another_ca_are_refused() {
    let s = served_embedded().await;
    let rogue = s
        .harness
        .pki()
        .files_from_another_ca("login")
        .expect("rogue files");
    put_with(&s, Some(client_tls(&rogue)))
        .await
        .expect_err("foreign CA");
    assert_eq!(live_entries(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_are_refused() {
    let s = served_embedded().await;
    let expired = s
        .harness
        .pki()
        .expired_files("login")
        .expect("expired files");
    put_with(&s, Some(client_tls(&expired)))
        .await
        .expect_err("expired certificate");
    assert_eq!(live_entries(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_certificate_without_permission_is_permission_denied() {
    let s = served_embedded().await;
    let audit = s.harness.pki().files("audit");
    let status = put_with(&s, Some(client_tls(&audit)))
        .await
        .expect_err("audit may not put");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("spiffe://tessera/audit"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("Put"), "{}", status.message());
    // The same certificate chain with an allowed identity gets in.
    let login = s.harness.pki().files("login");
    put_with(&s, Some(client_tls(&login)))
        .await
        .expect("login may put");
    assert_eq!(live_entries(&s).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_checked_per_rpc() {
    let s = served_embedded().await;
    let mut admin = s.harness.client("admin").await.expect("client");
    admin
        .stats(pb::StatsRequest {})
        .await
        .expect("admin may read stats");
    let status = admin.put(a_put()).await.expect_err("admin may not put");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = admin
        .take(pb::TakeRequest {
            token: "dc1.AAAAAAAAAAAAAAAAAAAAAA".into(),
        })
        .await
        .expect_err("nor take");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = admin
        .apply(pb::ApplyRequest {
            operations: vec![pb::Operation {
                kind: Some(pb::operation::Kind::Require(
                    "dc1.AAAAAAAAAAAAAAAAAAAAAA".into(),
                )),
            }],
        })
        .await
        .expect_err("nor apply");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = admin
        .get_many(pb::GetManyRequest {
            tokens: vec!["dc1.AAAAAAAAAAAAAAAAAAAAAA".into()],
        })
        .await
        .expect_err("nor read many");
    assert_eq!(status.code(), Code::PermissionDenied);
}
