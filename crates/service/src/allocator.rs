//! The allocator of every Tessera service process, and of the tests and benchmarks that
//! host services: mimalloc. Under many concurrent calls glibc's `malloc` and `free` took
//! about a tenth of a refresh's CPU (lock contention between the runtime's threads), and
//! with mimalloc's per-thread heaps the same benchmark refreshed about 12% more sessions
//! per core; see docs/benchmarks.md.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
