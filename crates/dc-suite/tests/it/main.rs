//! Two datacenters in containers built here: people sign in and out across them, codes
//! and sessions cross between them, a
//! partition fails closed and heals, a killed stash loses nothing it acknowledged, a
//! skewed clock changes nothing, and hostile tokens and peers are refused; the Kubernetes
//! overlay runs as rendered. Each test
//! prints its counts.

mod click_through;
mod codes;
mod hostile;
mod k8s;
mod kill;
mod partition;
mod people;
mod revocations;
mod skew;
mod support;
mod web;
