/// Everything the audit service can fail with, each with a stable code and one gRPC
/// status.
pub use tessera_service::ServiceError;
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// An event of a batch is not acceptable; nothing of the batch was stored.
    #[error("event {index} of the batch: {problem}; nothing of this batch was stored")]
    InvalidEvent { index: usize, problem: String },
    /// The batch itself is not acceptable.
    #[error("{0}")]
    InvalidBatch(String),
    /// The log file could not be written or read.
    #[error("audit log storage: {0}")]
    Storage(String),
    /// The log does not verify.
    #[error("the audit log does not verify: {0}")]
    Tampered(String),
    /// Configuration is invalid.
    #[error("configuration error: {0}")]
    Config(String),
}

impl From<tessera_service::ServeError> for AuditError {
    fn from(err: tessera_service::ServeError) -> Self {
        AuditError::Config(err.to_string())
    }
}

impl ServiceError for AuditError {
    /// A stable code.
    fn code(&self) -> &'static str {
        match self {
            AuditError::InvalidEvent { .. } => "invalid_event",
            AuditError::InvalidBatch(_) => "invalid_batch",
            AuditError::Storage(_) => "storage",
            AuditError::Tampered(_) => "tampered",
            AuditError::Config(_) => "config",
        }
    }

    fn grpc_code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            AuditError::InvalidEvent { .. } | AuditError::InvalidBatch(_) => Code::InvalidArgument,
            AuditError::Storage(_) => Code::Unavailable,
            AuditError::Tampered(_) | AuditError::Config(_) => Code::Internal,
        }
    }
}

impl AuditError {
    pub(crate) fn invalid_event(index: usize, problem: impl Into<String>) -> Self {
        AuditError::InvalidEvent {
            index,
            problem: problem.into(),
        }
    }
}
