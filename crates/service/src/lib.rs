//! What every Tessera service shares at start, written once.
//!
//! A service binds [`Listeners`] (its main port and its admin port), builds its own state,
//! and hands its gRPC router or HTTP app to [`Scaffold`], which serves the admin port
//! (`/healthz`, `/readyz`, `/metrics` and any admin routes of the service), flips
//! readiness, stops on the shutdown future, and owns the service's background tasks in
//! [`Tasks`]: each is told to stop at shutdown and awaited, and any still running when the
//! service is dropped is aborted, so none outlives its service. The result is a
//! [`Started`] handle: the bound addresses, whatever the service exposes to in-process
//! callers, and the future that serves.
//!
//! Errors follow one contract, [`ServiceError`]: a stable code that always travels in the
//! `tessera-code` metadata of a gRPC status, and one mapping to HTTP statuses.
//!
//! Linking this crate makes mimalloc the process's allocator (see `allocator.rs`).

mod allocator;
mod errors;
pub mod html;
mod listeners;
mod scaffold;
mod started;
mod tasks;

pub use errors::{code_of, http_status_of, ServiceError, CODE_METADATA};
pub use listeners::Listeners;
pub use scaffold::{grpc_server, GrpcServer, Scaffold, ServeError};
pub use started::{Running, ShutdownSwitch, Started};
pub use tasks::{StopSignal, Tasks};
