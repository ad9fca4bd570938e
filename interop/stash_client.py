"""An independent client of the token stash, written against nothing but
crates/proto/proto/tessera/stash/v1/stash.proto and the dev certificates.

Usage: stash_client.py <grpc address host:port> <dev PKI directory>

It generates Python stubs from the proto, connects with mutual TLS as `login`, and
checks the contract a client in any language relies on. Exits non-zero on any mismatch.
"""

import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_ROOT = os.path.join(ROOT, "crates", "proto", "proto")
PROTO = "tessera/stash/v1/stash.proto"


def load_stubs():
    out = tempfile.mkdtemp(prefix="tessera-stubs-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    code = protoc.main(
        ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", PROTO]
    )
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
    from tessera.stash.v1 import stash_pb2, stash_pb2_grpc  # noqa: E402

    return stash_pb2, stash_pb2_grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    address, pki = sys.argv[1], sys.argv[2]
    pb, rpc = load_stubs()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(os.path.join(pki, "ca.pem")),
        private_key=read(os.path.join(pki, "login.key")),
        certificate_chain=read(os.path.join(pki, "login.pem")),
    )
    channel = grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", "token-stash")])
    stash = rpc.TokenStashStub(channel)
    checks = []

    def check(name, condition):
        checks.append((name, bool(condition)))
        print(("ok     " if condition else "FAILED ") + name)

    def status_of(call, *args):
        try:
            call(*args, timeout=10)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as err:
            return err.code(), err.details()

    put = stash.Put(pb.PutRequest(namespace="code", value=b"from python", ttl_seconds=60, single_use=True, owner="py-user"), timeout=10)
    check("Put returns a token naming its datacenter", "." in put.token and len(put.token.split(".", 1)[1]) >= 22)
    check("Put returns the expiry in unix ms", put.expires_at_unix_ms > 1_600_000_000_000)
    listed = stash.ListByOwner(pb.ListByOwnerRequest(namespace="code", owner="py-user"), timeout=10)
    check("ListByOwner lists the token", put.token in listed.tokens)
    taken = stash.Take(pb.TakeRequest(token=put.token), timeout=10)
    check("Take returns the value", taken.value == b"from python" and taken.owner == "py-user")
    code, details = status_of(stash.Take, pb.TakeRequest(token=put.token))
    check("a second Take is FAILED_PRECONDITION naming 'consumed'", code == grpc.StatusCode.FAILED_PRECONDITION and "consumed" in details)
    code, _ = status_of(stash.Take, pb.TakeRequest(token=put.token.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA"))
    check("an unknown token is NOT_FOUND", code == grpc.StatusCode.NOT_FOUND)
    code, details = status_of(stash.Put, pb.PutRequest(namespace="", value=b"x", ttl_seconds=60))
    check("an empty namespace is INVALID_ARGUMENT naming the field", code == grpc.StatusCode.INVALID_ARGUMENT and "namespace" in details)
    session = stash.Put(pb.PutRequest(namespace="session", value=b"s", ttl_seconds=60), timeout=10)
    got = stash.Get(pb.GetRequest(token=session.token), timeout=10)
    check("Get reads a reusable entry", got.value == b"s" and got.expires_at_unix_ms == session.expires_at_unix_ms)
    check("Delete reports it existed", stash.Delete(pb.DeleteRequest(token=session.token), timeout=10).existed)
    stats = stash.Stats(pb.StatsRequest(), timeout=10)
    check("Stats reports a capacity", stats.capacity_entries > 0)

    passed = sum(1 for _, ok in checks if ok)
    failed = len(checks) - passed
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
