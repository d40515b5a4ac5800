"""Footprint guards: importing the package and building a client with static keys and an
``endpoint_url`` never load botocore (about 100 ms of imports, and a session costs milliseconds);
the credential chain and the shared config still load it when they are needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sagemaker_rt_aio._botocore_session import LazySession


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_import_and_static_client_do_not_load_botocore() -> None:
    out = _run(
        """
        import sys
        import sagemaker_rt_aio
        print("after import:", any(m.startswith("botocore") for m in sys.modules))
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="secret",
            allow_http=True,
        )
        print("after client:", any(m.startswith("botocore") for m in sys.modules))
        """
    )
    assert out.splitlines() == ["after import: False", "after client: False"]


def test_client_without_endpoint_url_needs_no_botocore_when_nothing_is_configured() -> None:
    out = _run(
        """
        import sys
        import sagemaker_rt_aio
        client = sagemaker_rt_aio.SageMakerRuntimeClient("eu-west-1")
        print(client.endpoint_url, "botocore.session" in sys.modules)
        """
    )
    assert out == "https://runtime.sagemaker.eu-west-1.amazonaws.com False"


def test_a_config_file_is_read_through_botocore(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\nretry_mode = standard\n")
    out = _run(
        f"""
        import os, sys
        os.environ["AWS_CONFIG_FILE"] = {str(config)!r}
        import sagemaker_rt_aio
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            endpoint_url="http://127.0.0.1:9", allow_http=True,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        )
        print(client.region_name, client.retry_policy.mode, "botocore.session" in sys.modules)
        """
    )
    assert out == "ap-south-1 standard True"


def test_an_environment_setting_is_read_through_botocore() -> None:
    out = _run(
        """
        import os, sys
        os.environ["AWS_RETRY_MODE"] = "adaptive"
        import sagemaker_rt_aio
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            "us-east-1", endpoint_url="http://127.0.0.1:9", allow_http=True,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        )
        print(client.retry_policy.mode, "botocore.session" in sys.modules)
        """
    )
    assert out == "adaptive True"


def test_lazy_session_creates_the_session_on_first_use() -> None:
    lazy = LazySession("no-such-profile")
    assert not lazy.created
    assert "created=False" in repr(lazy)
    assert lazy.profile == "no-such-profile"  # forwarded to the real session
    assert lazy.created
    assert lazy.get() is lazy.get()


def test_aws_ca_bundle_alone_needs_no_botocore_and_loads_once(tmp_path: Path) -> None:
    import trustme

    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    out = _run(
        f"""
        import os, sys
        os.environ["AWS_CA_BUNDLE"] = {str(bundle)!r}
        import sagemaker_rt_aio
        def make():
            return sagemaker_rt_aio.SageMakerRuntimeClient(
                "us-east-1", endpoint_url="https://127.0.0.1:9",
                aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
            )
        first, second = make(), make()
        same = first._network.ssl is second._network.ssl
        with open({str(bundle)!r}, "ab") as f:
            f.write(b"\\n")  # a changed file is loaded again
        third = make()
        print(same, third._network.ssl is first._network.ssl,
              "botocore" in sys.modules)
        """
    )
    assert out == "True False False"
