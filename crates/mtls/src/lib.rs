//! Mutual TLS between Tessera services.
//!
//! Every internal call is gRPC over TLS in which both sides present a certificate from the
//! Tessera CA. A service's identity is the URI SAN of its certificate,
//! `spiffe://tessera/<service>`; servers check it on every RPC against an allow-list
//! ([`AccessPolicy`]), so a certificate that TLS accepted still cannot call what it was not
//! granted.
//!
//! For development, [`DevPki`] creates a CA and one certificate per service on first use.

mod access;
mod connect;
mod dev_pki;
mod error;
mod identity;
mod tls;

pub use access::AccessPolicy;
pub use connect::ServiceConnector;
pub use dev_pki::{DevCa, DevPki, IssuedCertificate, DEV_SERVICES};
pub use error::MtlsError;
pub use identity::{peer_identity, ServiceIdentity, SPIFFE_PREFIX};
pub use tls::{TlsFiles, TlsSettings};
