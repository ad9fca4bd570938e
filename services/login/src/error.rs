pub use tessera_service::ServiceError;

/// Everything the login service's library can fail with, each with a stable code. HTTP
/// answers to browsers and sites are built in [`crate::http`], which maps these codes to
/// pages and OAuth errors.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Configuration is invalid; the message names the key and the fix.
    #[error("configuration error: {0}")]
    Config(String),
    /// Input (a name, a URI, a password) is not acceptable.
    #[error("{field} {problem}")]
    InvalidInput {
        field: &'static str,
        problem: String,
    },
    /// A user or site with this name already exists.
    #[error("{what} {name:?} already exists; choose another name or change the existing one")]
    Duplicate { what: &'static str, name: String },
    /// No such user or site.
    #[error("no {what} named {name:?}; list them or add it first")]
    NotFound { what: &'static str, name: String },
    /// The directory database failed.
    #[error("user directory: {0}")]
    Directory(String),
    /// The stash or the session service failed or is unreachable.
    #[error("{service} is unavailable: {message}")]
    Backend {
        service: &'static str,
        message: String,
    },
    /// Randomness or hashing failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl ServiceError for LoginError {
    /// A stable, machine-readable code.
    fn code(&self) -> &'static str {
        match self {
            LoginError::Config(_) => "config",
            LoginError::InvalidInput { .. } => "invalid_input",
            LoginError::Duplicate { .. } => "duplicate",
            LoginError::NotFound { .. } => "not_found",
            LoginError::Directory(_) => "directory",
            LoginError::Backend { .. } => "backend_unavailable",
            LoginError::Crypto(_) => "crypto",
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            LoginError::InvalidInput { .. } => Code::InvalidArgument,
            LoginError::Duplicate { .. } => Code::AlreadyExists,
            LoginError::NotFound { .. } => Code::NotFound,
            // The directory or a backend not answering: try again later.
            LoginError::Directory(_) | LoginError::Backend { .. } => Code::Unavailable,
            LoginError::Config(_) | LoginError::Crypto(_) => Code::Internal,
        }
    }
}

impl LoginError {
    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        LoginError::InvalidInput {
            field,
            problem: problem.into(),
        }
    }
}

impl From<tessera_service::ServeError> for LoginError {
    fn from(err: tessera_service::ServeError) -> Self {
        LoginError::Config(err.to_string())
    }
}

impl From<sqlx::Error> for LoginError {
    fn from(err: sqlx::Error) -> Self {
        LoginError::Directory(err.to_string())
    }
}

impl From<tessera_stash_client::StashClientError> for LoginError {
    fn from(err: tessera_stash_client::StashClientError) -> Self {
        LoginError::Backend {
            service: "the token stash",
            message: err.to_string(),
        }
    }
}
