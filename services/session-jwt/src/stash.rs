//! The session service's view of the token stash: the shared typed client.

pub use tessera_stash_client::{Applied, BatchOp, Lookup, StashClient as Stash, StashClientError};

use crate::SessionError;

impl From<StashClientError> for SessionError {
    fn from(err: StashClientError) -> Self {
        match err {
            StashClientError::Config(message) => SessionError::Config(message),
            failed @ StashClientError::Failed { .. } => SessionError::Stash(failed.to_string()),
        }
    }
}
