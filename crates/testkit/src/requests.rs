//! Request builders tests and benchmarks share.

use tessera_proto::stash::v1 as pb;

/// A stash `Put` request.
pub fn put_request(
    namespace: &str,
    value: impl Into<Vec<u8>>,
    ttl_seconds: u32,
    single_use: bool,
    owner: &str,
) -> pb::PutRequest {
    pb::PutRequest {
        namespace: namespace.into(),
        value: value.into(),
        ttl_seconds,
        single_use,
        owner: owner.into(),
        token: String::new(),
    }
}
