/// Everything the session service can answer instead of tokens, each with a stable code
/// and exactly one gRPC status.
pub use tessera_service::ServiceError;
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A request field is missing or out of bounds.
    #[error("{field} {problem}")]
    InvalidArgument {
        field: &'static str,
        problem: String,
    },
    /// The refresh token is not known (never issued, or its session ended long ago).
    #[error("refresh token not recognised; sign in again")]
    UnknownRefreshToken,
    /// The token names a datacenter this deployment does not have.
    #[error("the refresh token names datacenter {datacenter:?}, which this deployment does not have; it was not issued here; sign in again")]
    UnknownDatacenter { datacenter: String },
    /// The session was revoked or reached its hard limit.
    #[error("the session has ended ({0}); sign in again")]
    SessionEnded(&'static str),
    /// A rotated refresh token was used again after the grace window.
    #[error("refresh token reuse detected: this refresh token was already exchanged; the whole session was revoked to protect the account; sign in again")]
    RefreshTokenReused,
    /// The token did not verify.
    #[error("{0}")]
    Rejected(Box<tessera_verify::Rejection>),
    /// The token stash refused or failed.
    #[error("session storage: {0}")]
    Stash(String),
    /// Signing keys could not be read, written or generated.
    #[error("signing keys: {0}")]
    Keys(String),
    /// Configuration is invalid.
    #[error("configuration error: {0}")]
    Config(String),
}

impl ServiceError for SessionError {
    /// A stable, machine-readable code.
    fn code(&self) -> &'static str {
        match self {
            SessionError::InvalidArgument { .. } => "invalid_argument",
            SessionError::UnknownRefreshToken => "unknown_refresh_token",
            SessionError::UnknownDatacenter { .. } => "unknown_datacenter",
            SessionError::SessionEnded(_) => "session_ended",
            SessionError::RefreshTokenReused => "refresh_token_reused",
            SessionError::Rejected(rejection) => rejection.code(),
            SessionError::Stash(_) => "stash",
            SessionError::Keys(_) => "keys",
            SessionError::Config(_) => "config",
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            SessionError::InvalidArgument { .. } => Code::InvalidArgument,
            SessionError::UnknownRefreshToken | SessionError::UnknownDatacenter { .. } => {
                Code::NotFound
            }
            SessionError::SessionEnded(_) | SessionError::RefreshTokenReused => {
                Code::FailedPrecondition
            }
            SessionError::Rejected(_) => Code::Unauthenticated,
            SessionError::Stash(_) => Code::Unavailable,
            SessionError::Keys(_) | SessionError::Config(_) => Code::Internal,
        }
    }
}

impl SessionError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        SessionError::InvalidArgument {
            field,
            problem: problem.into(),
        }
    }
}

impl From<tessera_service::ServeError> for SessionError {
    fn from(err: tessera_service::ServeError) -> Self {
        SessionError::Config(err.to_string())
    }
}

impl From<SessionError> for tonic::Status {
    fn from(err: SessionError) -> Self {
        err.to_status()
    }
}
