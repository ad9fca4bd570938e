//! Two datacenters in containers built here: codes and sessions cross between them, a
//! partition fails closed and heals, a killed stash loses nothing it acknowledged, a
//! skewed clock changes nothing, and hostile tokens and peers are refused. Each test
//! prints its counts.

mod codes;
mod hostile;
mod kill;
mod partition;
mod revocations;
mod skew;
mod support;
