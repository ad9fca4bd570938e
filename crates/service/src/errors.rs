//! One error contract for every service: a stable code, carried the same way on every
//! surface, so callers match on codes and never on message text.

/// The gRPC metadata key carrying the stable code of every error status.
pub const CODE_METADATA: &str = "tessera-code";

/// A service's error: a stable code, and the gRPC status it is answered with. The status
/// (and the HTTP status derived from it) is made here, once, for every service.
pub trait ServiceError: std::error::Error {
    /// A stable, machine-readable code, e.g. `consumed`; also the `reason` in metrics.
    fn code(&self) -> &'static str;

    /// The gRPC status code it is answered with.
    fn grpc_code(&self) -> tonic::Code;

    /// The gRPC status: the code in [`CODE_METADATA`] always, the message for people.
    fn to_status(&self) -> tonic::Status {
        let mut status = tonic::Status::new(self.grpc_code(), self.to_string());
        status.metadata_mut().insert(
            CODE_METADATA,
            tonic::metadata::MetadataValue::from_static(self.code()),
        );
        status
    }

    /// The HTTP status it is answered with on an HTTP surface.
    fn http_status(&self) -> http::StatusCode {
        http_status_of(self.grpc_code())
    }
}

/// The stable code a Tessera service put on `status`, if it did.
pub fn code_of(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get(CODE_METADATA)
        .and_then(|value| value.to_str().ok())
}

/// The HTTP status matching a gRPC status code (the gRPC-HTTP mapping of
/// google.rpc.Code), so both surfaces of a service always agree.
pub fn http_status_of(code: tonic::Code) -> http::StatusCode {
    use http::StatusCode;
    use tonic::Code;
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the code was already used; sign in again")]
    struct Used;

    impl ServiceError for Used {
        fn code(&self) -> &'static str {
            "consumed"
        }
        fn grpc_code(&self) -> tonic::Code {
            tonic::Code::FailedPrecondition
        }
    }

    #[test]
    fn the_code_always_travels_in_metadata_and_the_message_is_for_people() {
        let status = Used.to_status();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(code_of(&status), Some("consumed"));
        assert_eq!(status.message(), "the code was already used; sign in again");
        assert_eq!(Used.http_status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(code_of(&tonic::Status::internal("plain")), None);
    }
}
