"""Make tests/vectors/bearer_tokens.json with the SageMaker Python SDK's own token generator.

sagemaker-core pulls in a large dependency tree, so the tests do not install it; this script was
run once and its output committed. To rerun it::

    pip download --no-deps sagemaker-core -d /tmp/smc
    python tests/vectors/make_bearer_vectors.py /tmp/smc/sagemaker_core-*.whl

It loads only ``sagemaker/core/token_generator/token_generator.py`` from the wheel (that module
needs nothing but botocore), freezes botocore's clock, and records the token for each case.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import botocore.auth
from botocore.credentials import Credentials

MODULE = "sagemaker/core/token_generator/token_generator.py"
CASES = [
    # (access key, secret, session token, region, expires, unix time)
    ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, "us-east-1", 43200, 1767225600),
    ("ASIAEXAMPLE", "secret/with+chars=", "IQoJb3JpZ2luX2VjE//+token==", "eu-west-1", 900, 1780000000),
    ("AKID2", "s3cr3t", "", "ap-northeast-2", 1, 1700000123),
    ("AKIDLONG", "x" * 40, "FwoGZXIvYXdzE" + "A/b+C=" * 40, "us-gov-west-1", 3600, 1800000000),
]


def load_generator(wheel: str):
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(MODULE)
    folder = Path(tempfile.mkdtemp())
    path = folder / "sagemaker_token_generator.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("sagemaker_token_generator", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(wheel: str) -> None:
    generator = load_generator(wheel)
    vectors = []
    for access, secret, token, region, expires, now in CASES:
        fixed = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).replace(tzinfo=None)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=fixed):
            minted = generator._generate_token(Credentials(access, secret, token), region, expires)
        vectors.append(
            {
                "access_key": access,
                "secret_key": secret,
                "token": token,
                "region": region,
                "expires_in": expires,
                "now": now,
                "bearer_token": minted,
            }
        )
    out = Path(__file__).with_name("bearer_tokens.json")
    out.write_text(json.dumps({"source": Path(wheel).name, "vectors": vectors}, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
