//! The Kubernetes overlays of `k8s/`, proven without a cluster: an overlay rendered
//! ([`manifests`]), its Secrets made as an operator makes them ([`secrets`]), and its
//! workloads run in containers exactly as its manifests say ([`run`]).

pub mod manifests;
pub mod run;
pub mod secrets;

pub use manifests::Rendered;
pub use run::ManifestRun;
