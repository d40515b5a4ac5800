"""The project's operation descriptions (sagemaker_rt_aio._model) against botocore's service model
for sagemaker-runtime, member by member: names, locations, header names, types, constraints,
required members and errors. A new member in botocore's model fails here until it is described.

InvokeEndpointWithBidirectionalStream, if botocore's model has it, belongs to another module and
is not compared here."""

from __future__ import annotations

import dataclasses
from typing import Any

import botocore
import botocore.session
import pytest
from botocore import xform_name

from sagemaker_rt_aio import _model as m
from sagemaker_rt_aio import _types as t
from sagemaker_rt_aio._errors import ERROR_CLASSES
from sagemaker_rt_aio.local._invocation import Invocation

OPERATIONS = {
    "InvokeEndpoint": (m.INVOKE_ENDPOINT, t.InvokeEndpointRequest),
    "InvokeEndpointWithResponseStream": (
        m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM,
        t.InvokeEndpointWithResponseStreamRequest,
    ),
    "InvokeEndpointAsync": (m.INVOKE_ENDPOINT_ASYNC, t.InvokeEndpointAsyncRequest),
}
# Body and EndpointName are bound apart (payload and URI), not as header members.
NOT_HEADERS = {"Body", "EndpointName"}
ASCII_ONLY = "\\p{ASCII}*"


@pytest.fixture(scope="module")
def service() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker-runtime")


def test_botocore_is_recent_enough(service: Any) -> None:
    members = service.operation_model("InvokeEndpoint").input_shape.members
    assert "PrefixAwareId" in members, f"botocore {botocore.__version__} predates PrefixAwareId"


def test_every_classic_operation_is_described(service: Any) -> None:
    others = set(service.operation_names) - set(OPERATIONS)
    assert others <= {"InvokeEndpointWithBidirectionalStream"}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_members_match(service: Any, name: str) -> None:
    operation, request_type = OPERATIONS[name]
    shape = service.operation_model(name).input_shape
    ours = {member.attr: member for member in operation.members}
    theirs = {
        xform_name(member_name): (member_name, member_shape)
        for member_name, member_shape in shape.members.items()
        if member_name not in NOT_HEADERS
    }
    assert set(ours) == set(theirs)
    for attr, (member_name, member_shape) in theirs.items():
        member = ours[attr]
        assert member_shape.serialization.get("location") == "header", member_name
        assert member.header == member_shape.serialization["name"], member_name
        meta = member_shape.metadata
        if member_shape.type_name == "integer":
            assert member.is_int, member_name
            assert (member.min_value, member.max_value) == (meta.get("min"), meta.get("max"))
        else:
            assert member_shape.type_name == "string", member_name
            assert not member.is_int
            assert member.max_len == meta.get("max"), member_name
            assert member.min_len == meta.get("min", 0), member_name
            # Our patterns are anchored transcriptions; one exists where the model has one, except
            # \p{ASCII}*, which every header value is checked against (printable ASCII).
            pattern = meta.get("pattern")
            if pattern in (ASCII_ONLY, ".*"):
                pattern = None
            assert (member.pattern is not None) == (pattern is not None), member_name
    fields = {f.name for f in dataclasses.fields(request_type)}
    assert fields == set(ours) | {"endpoint_name", "body"}
    # Required members: the endpoint name always; the body where the model requires it.
    assert set(shape.required_members) == {"EndpointName"} | (
        {"Body"} if operation.body_required else set()
    )
    assert shape.members["EndpointName"].serialization["location"] == "uri"
    assert shape.members["EndpointName"].metadata["max"] == m.ENDPOINT_NAME_MAX
    body = shape.members.get("Body")
    if body is not None:
        assert body.type_name == "blob"
        if operation.body_max is not None:
            assert body.metadata["max"] == operation.body_max


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_errors_are_known(service: Any, name: str) -> None:
    errors = {shape.name for shape in service.operation_model(name).error_shapes}
    assert errors <= set(ERROR_CLASSES)


@pytest.mark.parametrize("name", ["InvokeEndpoint", "InvokeEndpointWithResponseStream"])
def test_emulator_binds_every_member(name: str) -> None:
    operation, _ = OPERATIONS[name]
    fields = {f.name for f in dataclasses.fields(Invocation)}
    assert {member.attr for member in operation.members} <= fields


def test_response_headers(service: Any) -> None:
    out = service.operation_model("InvokeEndpoint").output_shape.members
    headers = {
        member.serialization["name"].lower()
        for member in out.values()
        if member.serialization.get("location") == "header"
    }
    assert headers == {
        m.RESPONSE_CONTENT_TYPE,
        m.RESPONSE_INVOKED_VARIANT,
        m.RESPONSE_CUSTOM_ATTRIBUTES,
        m.RESPONSE_NEW_SESSION_ID,
        m.RESPONSE_CLOSED_SESSION_ID,
    }
    out = service.operation_model("InvokeEndpointAsync").output_shape.members
    assert {
        member.serialization["name"].lower()
        for member in out.values()
        if member.serialization.get("location") == "header"
    } == {m.RESPONSE_OUTPUT_LOCATION, m.RESPONSE_FAILURE_LOCATION}
