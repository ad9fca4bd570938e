//! Tessera's gRPC contracts. The `.proto` files under `proto/` are the source of truth;
//! this crate only compiles them.

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

/// The token stash contract (`tessera.stash.v1`).
pub mod stash {
    pub mod v1 {
        tonic::include_proto!("tessera.stash.v1");
    }
}

/// The session contract (`tessera.session.v1`).
pub mod session {
    pub mod v1 {
        tonic::include_proto!("tessera.session.v1");
    }
}

/// The audit contract (`tessera.audit.v1`).
pub mod audit {
    pub mod v1 {
        tonic::include_proto!("tessera.audit.v1");
    }
}
