"""``examples/test_my_container.py`` (the example test for a user's project), run in this suite.

Its tests and fixtures are imported here, so they run in this session (with the stand-in
container, as ``MODEL_CONTAINER_URL`` is not set) instead of in a second pytest process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "examples" / "test_my_container.py"
_spec = importlib.util.spec_from_file_location("examples_test_my_container", _PATH)
assert _spec is not None and _spec.loader is not None
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)

pytestmark = [pytest.mark.timeout(30)]

container_url = _example.container_url
runtime = _example.runtime
client = _example.client
test_scores = _example.test_scores
test_bad_input_is_a_model_error = _example.test_bad_input_is_a_model_error
test_streams = _example.test_streams
test_rides_out_a_brief_outage = _example.test_rides_out_a_brief_outage
test_a_broken_stream_is_reported = _example.test_a_broken_stream_is_reported
