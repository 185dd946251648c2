"""Calls osam from Python with stubs generated from proto/ at run time (grpcio-tools), proving
that clients in other languages can be generated from the contract and used as documented.

Usage: check_client.py --address HOST:PORT --token TOKEN
Prints one JSON object with the WhoAmI user, a Check decision and the error of a denied call.
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO_ROOT = pathlib.Path(__file__).resolve().parents[2] / "proto"


def generate_stubs(out_dir: pathlib.Path) -> None:
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    files = sorted(str(path.relative_to(PROTO_ROOT)) for path in PROTO_ROOT.glob("osam/v1/*.proto"))
    status = protoc.main(
        ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    )
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out_dir:
        generate_stubs(pathlib.Path(out_dir))
        sys.path.insert(0, out_dir)
        common = importlib.import_module("osam.v1.common_pb2")
        catalog = importlib.import_module("osam.v1.catalog_authz_pb2")
        catalog_grpc = importlib.import_module("osam.v1.catalog_authz_pb2_grpc")
        rights = importlib.import_module("osam.v1.rights_pb2")
        rights_grpc = importlib.import_module("osam.v1.rights_pb2_grpc")

        metadata = [("authorization", f"Bearer {args.token}")]
        with grpc.insecure_channel(args.address) as channel:
            me = rights_grpc.RightsServiceStub(channel).WhoAmI(rights.WhoAmIRequest(), metadata=metadata, timeout=10)
            decision = catalog_grpc.CatalogAuthzStub(channel).Check(
                catalog.CheckRequest(
                    owner="copernicus",
                    collections=["s1-l1", "s2-l2"],
                    action=common.CATALOG_ACTION_READ,
                    explain=True,
                ),
                metadata=metadata,
                timeout=10,
            )
            try:
                rights_grpc.RightsServiceStub(channel).GetUserInfo(
                    rights.GetUserInfoRequest(username="bob"), metadata=metadata, timeout=10
                )
                denied = None
            except grpc.RpcError as error:
                denied = error.code().name

    print(
        json.dumps(
            {
                "username": me.user.username,
                "displayed_name": me.user.displayed_name,
                "allowed": decision.allowed,
                "collections": {d.collection: d.allowed for d in decision.decisions},
                "reasons": [catalog.ReasonKind.Name(d.reason.kind) for d in decision.decisions],
                "denied": denied,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
