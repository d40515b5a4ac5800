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


# Modules that a client with static keys and an endpoint_url never needs: each is imported when its
# feature is first used (bidirectional streams, their endpoint and TLS settings, HTTP/2, response
# streams, their request, events and decoders, the OpenAI route and its bearer tokens, async calls'
# request, async results and their S3 endpoint, adaptive retries), or by the CLI and the emulator.
LAZY_MODULES = (
    "botocore",
    "h2",
    "sagemaker_rt_aio._async_results",
    "sagemaker_rt_aio._bearer",
    "sagemaker_rt_aio._bidi",
    "sagemaker_rt_aio._bidi_endpoints",
    "sagemaker_rt_aio._bidi_events",
    "sagemaker_rt_aio._bidi_network",
    "sagemaker_rt_aio._bidi_request",
    "sagemaker_rt_aio._eventstream",
    "sagemaker_rt_aio._h2",
    "sagemaker_rt_aio._llm_text",
    "sagemaker_rt_aio._openai_route",
    "sagemaker_rt_aio._ratelimit",
    "sagemaker_rt_aio._s3",
    "sagemaker_rt_aio._s3_endpoint",
    "sagemaker_rt_aio._sse",
    "sagemaker_rt_aio._stream",
    "sagemaker_rt_aio._stream_text",
    "sagemaker_rt_aio._types_async",
    "sagemaker_rt_aio._types_stream",
    "sagemaker_rt_aio.cli",
    "sagemaker_rt_aio.local",
)
# Telemetry (when opentelemetry-api is installed) is set up by the client's constructor, not on import.
TELEMETRY_MODULES = ("opentelemetry", "sagemaker_rt_aio._telemetry")


def test_import_and_a_static_client_load_no_rarely_used_module() -> None:
    out = _run(
        f"""
        import sys
        import sagemaker_rt_aio
        def loaded(names):
            return sorted(m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names))
        lazy = {LAZY_MODULES!r}
        print(loaded(lazy + {TELEMETRY_MODULES!r}))
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            "us-east-1", endpoint_url="http://127.0.0.1:9", allow_http=True,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        )
        print(loaded(lazy))
        """
    )
    assert out.splitlines() == ["[]", "[]"]


def test_rarely_used_modules_load_when_their_feature_is_first_used() -> None:
    out = _run(
        """
        import sys
        import sagemaker_rt_aio
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            "us-east-1", endpoint_url="http://127.0.0.1:9", allow_http=True,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        )
        loaded = lambda name: "sagemaker_rt_aio." + name in sys.modules
        print(loaded("_types_stream"), loaded("_types_async"))
        client.invoke_endpoint_with_response_stream(endpoint_name="e", body=b"{}")
        print(loaded("_stream"), loaded("_bidi"), loaded("_openai_route"), loaded("_types_stream"))
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="e")
        print(loaded("_bidi"), loaded("_h2"), loaded("_openai_route"))
        client.openai_base_url("e")
        print(loaded("_openai_route"))
        sagemaker_rt_aio.InvokeEndpointAsyncRequest(endpoint_name="e", body=b"{}")
        print(loaded("_types_async"))
        """
    )
    assert out.splitlines() == [
        "False False",
        "True False False True",
        "True True False",
        "True",
        "True",
    ]


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    # The lazily loaded names (PEP 562 __getattr__) included: `import *`, dir() and attribute
    # access all see them, and each is the object its module defines.
    out = _run(
        """
        import importlib
        import sagemaker_rt_aio
        names = set(sagemaker_rt_aio.__all__)
        star = {}
        exec("from sagemaker_rt_aio import *", star)
        print(sorted(names - set(star)), sorted(names - set(dir(sagemaker_rt_aio))))
        for name, module in sagemaker_rt_aio._LAZY.items():
            assert name in names, name
            value = getattr(importlib.import_module(module, "sagemaker_rt_aio"), name)
            assert getattr(sagemaker_rt_aio, name) is value, name
        try:
            sagemaker_rt_aio.NoSuchName
        except AttributeError as e:
            print(e)
        """
    )
    assert out.splitlines() == [
        "[] []",
        "module 'sagemaker_rt_aio' has no attribute 'NoSuchName'",
    ]


def test_lazy_names_are_thread_safe_on_first_access() -> None:
    out = _run(
        """
        import threading
        import sagemaker_rt_aio
        names = sorted(sagemaker_rt_aio._LAZY)
        seen, start = [], threading.Barrier(8)
        def resolve():
            start.wait()
            seen.append(tuple(getattr(sagemaker_rt_aio, name) for name in names))
        threads = [threading.Thread(target=resolve) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(len(seen), len(set(seen)))
        """
    )
    assert out == "8 1"


def test_http2_and_s3_endpoints_are_resolved_when_first_needed() -> None:
    out = _run(
        """
        import sys
        import sagemaker_rt_aio
        client = sagemaker_rt_aio.SageMakerRuntimeClient(
            "us-east-1", endpoint_url="http://127.0.0.1:9", allow_http=True,
            aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        )
        loaded = lambda name: "sagemaker_rt_aio." + name in sys.modules
        print(loaded("_bidi_endpoints"), loaded("_bidi_network"), loaded("_s3_endpoint"))
        print(client.bidirectional_endpoint_url, loaded("_bidi_endpoints"), loaded("_bidi_network"))
        view = client.with_options(retry_policy=sagemaker_rt_aio.RetryPolicy.none())
        print(view._bidi_settings() is client._bidi_settings())  # resolved once, for the client
        print(client._results._s3_endpoint.url, loaded("_s3_endpoint"))
        """
    )
    assert out.splitlines() == [
        "False False False",
        "http://127.0.0.1:9 True True",
        "True",
        "https://s3.amazonaws.com True",
    ]
