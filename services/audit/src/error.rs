/// Everything the audit service can fail with, each with a stable code and one gRPC
/// status.
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

impl AuditError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::InvalidEvent { .. } => "invalid_event",
            AuditError::InvalidBatch(_) => "invalid_batch",
            AuditError::Storage(_) => "storage",
            AuditError::Tampered(_) => "tampered",
            AuditError::Config(_) => "config",
        }
    }

    /// The gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self {
            AuditError::InvalidEvent { .. } | AuditError::InvalidBatch(_) => Code::InvalidArgument,
            AuditError::Storage(_) => Code::Unavailable,
            AuditError::Tampered(_) | AuditError::Config(_) => Code::Internal,
        };
        tonic::Status::new(code, format!("{}: {self}", self.code()))
    }

    pub(crate) fn invalid_event(index: usize, problem: impl Into<String>) -> Self {
        AuditError::InvalidEvent {
            index,
            problem: problem.into(),
        }
    }
}
