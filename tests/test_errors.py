"""Error responses to typed errors: ``parse_error_response`` over the reference's section 4.3, the error
classes' attributes, pickling, and the same through the client against a loopback server."""

from __future__ import annotations

import json
import pickle
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from conftest import ScriptedServer, json_error
from multidict import CIMultiDict, CIMultiDictProxy

from sagemaker_rt_aio import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    ClientClosedError,
    ConnectionClosedError,
    ConnectTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    EventStreamError,
    InputValidationError,
    InternalDependencyException,
    InternalFailure,
    InternalServerError,
    InternalStreamFailure,
    ModelError,
    ModelNotReadyException,
    ModelStreamError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PoolTimeoutError,
    ReadTimeoutError,
    ResponseMetadata,
    RetryPolicy,
    S3Error,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    ServiceUnavailableError,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from sagemaker_rt_aio._errors import ERROR_CLASSES, normalize_error_code, parse_error_response

NS = "http://internal.amazon.com/coral/com.amazon.sagemaker/"


def hdrs(**headers: str) -> CIMultiDictProxy[str]:
    """Case-insensitive response headers, as aiohttp hands them over (``_`` in names becomes ``-``)."""
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))


def parse(
    status: int,
    body: bytes | str | dict[str, Any] = b"",
    *,
    retry_attempts: int = 0,
    **headers: str,
) -> ServiceError:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return parse_error_response(status, hdrs(**headers), body, retry_attempts=retry_attempts)


# -- the reference's table (section 4.3, "Observed results") ----------------------------------------


def test_table_validation_error_from_header() -> None:
    error = parse(
        400,
        {"message": "1 validation error detected"},
        x_amzn_ErrorType="ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/",
        x_amzn_RequestId="r1",
    )
    assert type(error) is ValidationError
    assert error.code == "ValidationError"
    assert error.message == "1 validation error detected"
    assert error.status_code == 400
    assert error.request_id == "r1"


def test_table_model_error_with_modeled_fields() -> None:
    body = {
        "LogStreamArn": "arn:aws:logs:us-east-1:111122223333:log-group:/aws/sagemaker/Endpoints/ep",
        "Message": 'Received client error (400) from primary with message "bad input".',
        "OriginalMessage": "bad input",
        "OriginalStatusCode": 400,
        "ErrorCode": "ignored-extra-key",
    }
    error = parse(424, body, x_amzn_ErrorType=f"ModelError:{NS}", x_amzn_RequestId="r2")
    assert type(error) is ModelError
    assert error.code == "ModelError"
    assert error.status_code == 424
    assert error.message == body["Message"]
    assert error.original_status_code == 400
    assert error.original_message == "bad input"
    assert error.log_stream_arn == body["LogStreamArn"]
    assert error.request_id == "r2"


def test_table_service_unavailable_from_dunder_type() -> None:
    error = parse(503, {"__type": "com.amazon.sagemaker#ServiceUnavailable", "Message": "busy"})
    assert type(error) is ServiceUnavailable
    assert (error.code, error.message, error.status_code) == ("ServiceUnavailable", "busy", 503)


def test_table_model_not_ready_from_body_code() -> None:
    error = parse(429, {"code": "ModelNotReadyException", "message": "not ready"})
    assert type(error) is ModelNotReadyException
    assert (error.code, error.message) == ("ModelNotReadyException", "not ready")


def test_table_empty_500_is_generic_with_reason_phrase() -> None:
    error = parse(500, b"", x_amzn_RequestId="r5")
    assert type(error) is ServiceError
    assert (error.code, error.message) == ("500", "Internal Server Error")
    # botocore drops the request id here; we always read the header.
    assert error.request_id == "r5"
    assert error.response_metadata is not None
    assert error.response_metadata.request_id == "r5"


def test_table_html_502_is_generic_with_reason_phrase() -> None:
    error = parse(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    assert type(error) is ServiceError
    assert (error.code, error.message, error.status_code) == ("502", "Bad Gateway", 502)


def test_table_non_json_400_body_becomes_the_message() -> None:
    error = parse(400, b"not json at all")
    assert type(error) is ServiceError
    assert (error.code, error.message) == ("400", "not json at all")


def test_table_unknown_code_from_header_is_a_plain_service_error() -> None:
    error = parse(
        403,
        {"Message": "User is not authorized"},
        x_amzn_ErrorType="AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral/",
    )
    assert type(error) is ServiceError
    assert not isinstance(error, tuple(ERROR_CLASSES.values()))
    assert (error.code, error.message, error.status_code) == (
        "AccessDeniedException",
        "User is not authorized",
        403,
    )


def test_throttling_400_with_json_null_message() -> None:
    error = parse(400, b'{"message": null}', x_amzn_ErrorType="ThrottlingException")
    assert type(error) is ThrottlingException
    assert error.message is None
    assert error.status_code == 400
    text = str(error)
    assert "ThrottlingException" in text and "400" in text and "None" not in text


def error_type(header: str | None) -> dict[str, Any]:
    return {"x_amzn_ErrorType": header} if header else {}


# -- code precedence: x-amzn-ErrorType > code > Code > __type > status -------------------------------

ALL_SOURCES: dict[str, Any] = {
    "code": "ServiceUnavailable",
    "Code": "InternalFailure",
    "__type": "com.amazon.sagemaker#ModelNotReadyException",
}


@pytest.mark.parametrize(
    ("header", "body_keys", "expected"),
    [
        ("ValidationError:" + NS, ["code", "Code", "__type"], "ValidationError"),
        (None, ["code", "Code", "__type"], "ServiceUnavailable"),
        (None, ["Code", "__type"], "InternalFailure"),
        (None, ["__type"], "ModelNotReadyException"),
        (None, [], "418"),
        ("ValidationError", [], "ValidationError"),
        (None, ["code", "__type"], "ServiceUnavailable"),
    ],
)
def test_code_precedence(header: str | None, body_keys: list[str], expected: str) -> None:
    body = {key: ALL_SOURCES[key] for key in body_keys}
    body["message"] = "m"
    error = parse(418, body, **error_type(header))
    assert error.code == expected
    assert type(error) is ERROR_CLASSES.get(expected, ServiceError)


def test_header_name_is_case_insensitive() -> None:
    error = parse(400, {"code": "InternalFailure"}, X_AMZN_ERRORTYPE="ValidationError")
    assert error.code == "ValidationError"


def test_plain_dict_headers_must_be_lower_cased() -> None:
    # The documented contract: case-insensitive or lower-cased headers.
    error = parse_error_response(
        400, {"x-amzn-errortype": "ValidationError", "x-amzn-requestid": "low"}, b"{}"
    )
    assert (error.code, error.request_id) == ("ValidationError", "low")


def test_empty_error_type_header_falls_through_to_the_body() -> None:
    error = parse(400, {"code": "ThrottlingException"}, x_amzn_ErrorType="")
    assert error.code == "ThrottlingException"


def test_non_string_body_codes_are_ignored() -> None:
    error = parse(400, {"code": 42, "Code": None, "__type": "ValidationError"})
    assert error.code == "ValidationError"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ValidationError", "ValidationError"),
        (
            "ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/",
            "ValidationError",
        ),
        ("com.amazon.sagemaker#ModelError", "ModelError"),
        ("com.amazon#sagemaker#ModelError", "ModelError"),  # the LAST '#'
        ("com.amazon.sagemaker#ModelError:http://x/#y", "ModelError"),  # ':' first, then '#'
        ("a:b:c", "a"),
        ("#Code", "Code"),
        ("Code#", ""),
    ],
)
def test_normalize_error_code(raw: str, expected: str) -> None:
    assert normalize_error_code(raw) == expected


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("ModelError:" + NS + "#x", {}, "ModelError"),
        (None, {"__type": "com.amazon.coral.service#ThrottlingException"}, "ThrottlingException"),
        (None, {"code": "a.b#c.d#ServiceUnavailable"}, "ServiceUnavailable"),
        (None, {"Code": "InternalFailure:extra"}, "InternalFailure"),
    ],
)
def test_normalisation_applies_to_every_source(
    header: str | None, body: dict[str, str], expected: str
) -> None:
    error = parse(400, body, **error_type(header))
    assert error.code == expected
    assert type(error) is ERROR_CLASSES[expected]


# -- the message -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "lower", "Message": "upper", "errorMessage": "err"}, "lower"),
        ({"Message": "upper", "errorMessage": "err"}, "upper"),
        ({"errorMessage": "err"}, "err"),
        ({"message": None}, None),
        ({}, None),
        ({"message": 17}, None),
        # A null lowercase key does not hide a usable capitalised one (botocore would give None).
        ({"message": None, "Message": "upper"}, "upper"),
    ],
)
def test_message_keys(body: dict[str, Any], expected: str | None) -> None:
    assert parse(400, body, x_amzn_ErrorType="ValidationError").message == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b"", "Internal Server Error"),
        (503, b"   \r\n ", "Service Unavailable"),
        (502, b"<html>gateway</html>", "Bad Gateway"),
        (504, b"  <HTML><body>x</body></HTML>", "Gateway Timeout"),
        (503, b"<!DOCTYPE html><html></html>", "Service Unavailable"),
    ],
)
def test_empty_or_html_5xx_get_the_reason_phrase(status: int, body: bytes, expected: str) -> None:
    error = parse(status, body)
    assert (error.code, error.message, error.status_code) == (str(status), expected, status)
    assert type(error) is ServiceError


def test_empty_5xx_still_honours_the_error_type_header() -> None:
    # botocore ignores the header on a generic 5xx; we keep it so a retryable code stays retryable.
    error = parse(503, b"", x_amzn_ErrorType="ServiceUnavailable:" + NS)
    assert type(error) is ServiceUnavailable
    assert error.message == "Service Unavailable"


def test_html_4xx_is_not_generic_the_text_is_the_message() -> None:
    error = parse(404, b"<html>no such route</html>")
    assert (error.code, error.message) == ("404", "<html>no such route</html>")


def test_json_5xx_is_parsed_normally() -> None:
    error = parse(500, {"message": "boom"}, x_amzn_ErrorType="InternalFailure")
    assert type(error) is InternalFailure
    assert error.message == "boom"


def test_non_utf8_non_json_body_is_decoded_with_replacement() -> None:
    error = parse(400, b"bad \xff\xfe bytes")
    assert error.message == "bad \ufffd\ufffd bytes"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"just a string"', b"null", b"42"])
def test_json_that_is_not_an_object(body: bytes) -> None:
    error = parse(400, body)
    assert (error.code, error.message) == ("400", None)


# -- ModelError's extra fields ----------------------------------------------------------------------


def test_model_error_timeout_has_original_status_zero() -> None:
    error = parse(
        424,
        {
            "Message": "Received server error (0) from model with message "
            '"Your invocation timed out while waiting for a response from container model."',
            "OriginalStatusCode": 0,
        },
        x_amzn_ErrorType="ModelError",
    )
    assert isinstance(error, ModelError)
    assert error.original_status_code == 0
    assert error.original_message is None
    assert error.log_stream_arn is None


def test_model_error_with_no_modeled_fields() -> None:
    error = parse(424, {"message": "m"}, x_amzn_ErrorType="ModelError")
    assert isinstance(error, ModelError)
    assert (error.original_status_code, error.original_message, error.log_stream_arn) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("value", ["400", 400.5, True, None, [400]])
def test_model_error_original_status_code_must_be_an_int(value: object) -> None:
    error = parse(424, {"OriginalStatusCode": value}, x_amzn_ErrorType="ModelError")
    assert isinstance(error, ModelError)
    assert error.original_status_code is None


def test_model_stream_error_keeps_its_error_code() -> None:
    error = parse(
        400,
        {"Message": "too slow", "ErrorCode": "ModelInvocationTimeExceeded"},
        x_amzn_ErrorType="ModelStreamError",
    )
    assert isinstance(error, ModelStreamError)
    assert error.error_code == "ModelInvocationTimeExceeded"


# -- request id and response metadata -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"), [(400, b"{}"), (424, b'{"Message":"x"}'), (500, b""), (502, b"<html>")]
)
def test_request_id_comes_from_the_header(status: int, body: bytes) -> None:
    error = parse(status, body, X_AMZN_REQUESTID="abc-123")
    assert error.request_id == "abc-123"
    assert error.response_metadata is not None
    assert error.response_metadata.request_id == "abc-123"


def test_request_id_fallback_header_and_absence() -> None:
    assert parse(400, b"{}", x_amz_request_id="s3-style").request_id == "s3-style"
    assert parse(400, b"{}", x_amzn_RequestId="a", x_amz_request_id="b").request_id == "a"
    assert parse(400, b"{}").request_id is None


def test_request_id_in_the_body_is_not_used() -> None:
    error = parse(400, {"RequestId": "from-body", "requestId": "x"})
    assert error.request_id is None


def test_response_metadata_fields() -> None:
    error = parse(
        503,
        {"message": "busy"},
        retry_attempts=2,
        x_amzn_ErrorType="ServiceUnavailable",
        x_amzn_RequestId="rid",
        Content_Type="application/json",
        Retry_After="3",
    )
    metadata = error.response_metadata
    assert isinstance(metadata, ResponseMetadata)
    assert metadata.request_id == "rid"
    assert metadata.http_status_code == 503
    assert metadata.retry_attempts == 2
    assert metadata.http_headers == {
        "x-amzn-errortype": "ServiceUnavailable",
        "x-amzn-requestid": "rid",
        "content-type": "application/json",
        "retry-after": "3",
    }


# -- classes --------------------------------------------------------------------------------------

KNOWN: dict[str, type[ServiceError]] = {
    "InternalFailure": InternalFailure,
    "ServiceUnavailable": ServiceUnavailable,
    "ValidationError": ValidationError,
    "ModelError": ModelError,
    "InternalDependencyException": InternalDependencyException,
    "ModelNotReadyException": ModelNotReadyException,
    "ThrottlingException": ThrottlingException,
    "ModelStreamError": ModelStreamError,
    "InternalStreamFailure": InternalStreamFailure,
    # The HTTP/2 service's names (InvokeEndpointWithBidirectionalStream).
    "InputValidationError": InputValidationError,
    "InternalServerError": InternalServerError,
    "ServiceUnavailableError": ServiceUnavailableError,
}


def test_the_known_codes_are_exactly_these() -> None:
    assert ERROR_CLASSES == KNOWN


@pytest.mark.parametrize(("code", "cls"), sorted(KNOWN.items()))
@pytest.mark.parametrize("source", ["header", "code", "__type"])
def test_each_known_code_maps_to_its_class(code: str, cls: type[ServiceError], source: str) -> None:
    if source == "header":
        error = parse(400, {"message": "m"}, x_amzn_ErrorType=f"{code}:{NS}")
    elif source == "code":
        error = parse(400, {"message": "m", "code": code})
    else:
        error = parse(400, {"message": "m", "__type": f"com.amazonaws.sagemaker#{code}"})
    assert type(error) is cls
    assert isinstance(error, ServiceError)
    assert isinstance(error, SageMakerRuntimeError)
    assert error.code == code


@pytest.mark.parametrize(
    "code",
    [
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "validationerror",
        "ServiceError",
        "ModelErrorX",
    ],
)
def test_unknown_codes_are_plain_service_errors(code: str) -> None:
    error = parse(403, {"message": "m"}, x_amzn_ErrorType=code)
    assert type(error) is ServiceError
    assert error.code == code


@pytest.mark.parametrize(
    ("error", "parts"),
    [
        (
            parse(
                400, {"message": "bad"}, x_amzn_ErrorType="ValidationError", x_amzn_RequestId="r-1"
            ),
            ["ValidationError", "400", "r-1", "bad"],
        ),
        (parse(500, b"", x_amzn_RequestId="r-2"), ["500", "Internal Server Error", "r-2"]),
        (
            parse(424, {"Message": "model"}, x_amzn_ErrorType="ModelError", x_amzn_RequestId="r-3"),
            ["ModelError", "424", "r-3", "model"],
        ),
    ],
)
def test_str_has_code_status_and_request_id(error: ServiceError, parts: list[str]) -> None:
    text = str(error)
    for part in parts:
        assert part in text


def test_str_keeps_a_message_that_ends_in_punctuation() -> None:
    error = parse(400, {"message": "expected one of:"}, x_amzn_ErrorType="ValidationError")
    assert str(error).endswith("expected one of:")


def test_str_without_message_or_request_id() -> None:
    assert str(parse(400, {}, x_amzn_ErrorType="ValidationError")) == "ValidationError (400)"


# -- pickling ---------------------------------------------------------------------------------------


def service_errors() -> list[ServiceError]:
    return [
        parse(400, {"message": "bad"}, x_amzn_ErrorType="ValidationError", x_amzn_RequestId="r"),
        parse(
            424,
            {
                "Message": "m",
                "OriginalStatusCode": 500,
                "OriginalMessage": "om",
                "LogStreamArn": "arn:x",
            },
            x_amzn_ErrorType="ModelError",
            x_amzn_RequestId="r",
        ),
        parse(
            400, {"Message": "m", "ErrorCode": "StreamBroken"}, x_amzn_ErrorType="ModelStreamError"
        ),
        parse(503, b"", x_amzn_RequestId="r"),
        parse(403, {"message": "no"}, x_amzn_ErrorType="AccessDeniedException"),
        S3Error("denied", code="AccessDenied", status_code=403, request_id="s3r"),
    ]


@pytest.mark.parametrize("error", service_errors(), ids=lambda e: type(e).__name__)
def test_service_errors_pickle_with_their_fields(error: ServiceError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)
    assert clone.args == error.args


def other_errors() -> list[SageMakerRuntimeError]:
    return [
        ParamValidationError("endpoint_name", "must not be empty"),
        ClientClosedError(),
        NoRegionError(),
        NoCredentialsError(),
        TransportError("x"),
        EndpointConnectionError("no route"),
        ConnectTimeoutError("slow"),
        ConnectionClosedError("reset"),
        ReadTimeoutError("read"),
        PoolTimeoutError("pool"),
        DeadlineExceededError("deadline"),
        EventStreamError("crc"),
        AsyncInferenceFailure("model crashed", failure_location="s3://b/f"),
        AsyncInferenceTimeout(12.5, output_location="s3://b/o"),
    ]


@pytest.mark.parametrize("error", other_errors(), ids=lambda e: type(e).__name__)
def test_other_errors_pickle_with_their_fields(error: SageMakerRuntimeError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert vars(clone) == vars(error)
    assert str(clone) == str(error)


def test_pickled_errors_keep_typed_attributes() -> None:
    validation = pickle.loads(pickle.dumps(ParamValidationError("body", "is required")))
    assert (validation.field, validation.rule) == ("body", "is required")
    failure = pickle.loads(pickle.dumps(AsyncInferenceFailure("oom", failure_location="s3://f")))
    assert (failure.failure, failure.failure_location) == ("oom", "s3://f")
    timeout = pickle.loads(pickle.dumps(AsyncInferenceTimeout(3.0, output_location="s3://o")))
    assert (timeout.timeout, timeout.output_location) == (3.0, "s3://o")
    model = pickle.loads(pickle.dumps(service_errors()[1]))
    assert isinstance(model, ModelError)
    assert (model.original_status_code, model.log_stream_arn) == (500, "arn:x")
    assert model.response_metadata == service_errors()[1].response_metadata


def test_error_hierarchy() -> None:
    assert issubclass(ReadTimeoutError, TimeoutError)
    assert issubclass(EndpointConnectionError, ConnectionError)
    assert issubclass(ParamValidationError, ValueError)
    assert issubclass(AsyncInferenceTimeout, TimeoutError)
    for cls in (*KNOWN.values(), S3Error):
        assert issubclass(cls, ServiceError)
    for cls in (
        ServiceError,
        TransportError,
        AsyncInferenceFailure,
        AsyncInferenceTimeout,
        NoRegionError,
        NoCredentialsError,
        ClientClosedError,
        ParamValidationError,
    ):
        assert issubclass(cls, SageMakerRuntimeError)


# -- end to end through the client ------------------------------------------------------------------


@pytest.fixture
async def client(scripted_server: ScriptedServer) -> AsyncIterator[SageMakerRuntimeClient]:
    async with SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=scripted_server.url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        retry_policy=RetryPolicy.none(),
    ) as client:
        yield client


E2E = [
    (400, "ValidationError", ValidationError),
    (500, "InternalFailure", InternalFailure),
    (503, "ServiceUnavailable", ServiceUnavailable),
    (424, "ModelError", ModelError),
    (530, "InternalDependencyException", InternalDependencyException),
    (429, "ModelNotReadyException", ModelNotReadyException),
    (400, "ThrottlingException", ThrottlingException),
    (403, "AccessDeniedException", ServiceError),
    (400, "SomethingNew", ServiceError),
]


@pytest.mark.parametrize(("status", "code", "cls"), E2E)
async def test_client_raises_each_error_class(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    status: int,
    code: str,
    cls: type[ServiceError],
) -> None:
    scripted_server.script = [json_error(status, code, f"{code} happened")]
    with pytest.raises(ServiceError) as info:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    error = info.value
    assert type(error) is cls
    assert error.code == code
    assert error.status_code == status
    assert error.message == f"{code} happened"
    assert error.request_id == f"req-{code}"
    assert error.response_metadata is not None
    assert error.response_metadata.http_status_code == status
    assert error.response_metadata.retry_attempts == 0
    assert error.response_metadata.http_headers["x-amzn-requestid"] == f"req-{code}"
    assert len(scripted_server.received) == 1


async def test_client_model_error_extra_fields(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        json_error(
            424,
            "ModelError",
            "Received client error (400) from primary",
            Message="capitalised",
            OriginalStatusCode=400,
            OriginalMessage="bad input",
            LogStreamArn="arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/ep",
        )
    ]
    with pytest.raises(ModelError) as info:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    error = info.value
    assert error.message == "Received client error (400) from primary"
    assert error.original_status_code == 400
    assert error.original_message == "bad input"
    assert error.log_stream_arn == "arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/ep"


async def test_client_generic_html_502(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    async def html(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(
            status=502,
            body=b"<html><body>bad gateway</body></html>",
            content_type="text/html",
            headers={"x-amzn-RequestId": "html-rid"},
        )

    scripted_server.script = [html]
    with pytest.raises(ServiceError) as info:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    error = info.value
    assert type(error) is ServiceError
    assert (error.code, error.message, error.status_code) == ("502", "Bad Gateway", 502)
    assert error.request_id == "html-rid"


async def test_client_async_invocation_error(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [json_error(400, "ValidationError", "bad location")]
    with pytest.raises(ValidationError) as info:
        await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
    assert info.value.message == "bad location"
    assert scripted_server.received[0].raw_path == "/endpoints/ep/async-invocations"


async def test_client_errors_are_not_retried_with_retry_policy_none(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [json_error(503, "ServiceUnavailable", "busy")]
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert len(scripted_server.received) == 3
