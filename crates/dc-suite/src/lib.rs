//! Two Tessera datacenters in containers built on this machine (`just images`), for the
//! tests that part, kill and skew them. Nothing is pulled; a missing engine or image is
//! a loud failure naming the fix. The same containers also run the Kubernetes overlays
//! as their manifests say ([`k8s`]).

pub mod deployment;
pub mod docker;
pub mod k8s;
pub mod web;

pub use deployment::{Backend, DatacenterSpec, Deployment};
pub use web::{SiteCredentials, LOGIN_ORIGIN, USER};
