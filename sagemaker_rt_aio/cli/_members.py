"""One flag per request member, derived from the request dataclasses.

The flags come from the dataclasses' fields, so a member added to the service model (and to its
dataclass) gets its flag without a change here; the table below only adds help, a type, or the
name the CLI used before. A flag is passed to the client only when given: the client's own default
(and validation) applies otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Member:
    help: str
    type: Callable[[str], Any] = str
    aliases: tuple[str, ...] = ()
    metavar: str | None = None


# Members the CLI handles itself: the endpoint is a positional argument (or --endpoint-name), the
# body is read from text, a file or stdin.
HANDLED = frozenset({"endpoint_name", "body"})

MEMBERS: dict[str, Member] = {
    "content_type": Member("MIME type of the request body"),
    "accept": Member("desired MIME type of the answer"),
    "custom_attributes": Member("text forwarded to the model (X-Amzn-SageMaker-Custom-Attributes)"),
    "target_model": Member("model to invoke on a multi-model endpoint"),
    "target_variant": Member("production variant to invoke"),
    "target_container_hostname": Member("container to invoke on a multi-container endpoint"),
    "inference_id": Member("an identifier for this inference, for your tracking"),
    "enable_explanations": Member("JMESPath expression choosing which requests get explanations"),
    "inference_component_name": Member(
        "inference component to invoke", aliases=("--inference-component",)
    ),
    "session_id": Member("stateful session id, or NEW_SESSION to start one"),
    "prefix_aware_id": Member("routes requests that share a prompt prefix to the same instance"),
    "input_location": Member("s3:// URI of the input (instead of --body)", metavar="S3_URI"),
    "request_ttl_seconds": Member("seconds the request may wait in the queue", type=int),
    "invocation_timeout_seconds": Member("seconds the model may take once started", type=int),
    "s3_output_path_extension": Member("extension of the output object in S3"),
    "filename": Member("name of the output file in S3"),
}


def member_fields(request_type: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(request_type) if f.name not in HANDLED]


def _default_member(field: dataclasses.Field[Any]) -> Member:
    # A member this table does not know yet: an int if its annotation says so, else text.
    annotation = str(field.type).replace(" ", "")
    kind: Callable[[str], Any] = int if annotation in ("int", "int|None") else str
    return Member(f"the {field.name} member of the request", type=kind)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_member_flags(parser: argparse.ArgumentParser, request_type: type[Any]) -> None:
    """A flag for each member of ``request_type`` (dest ``member_<name>``, default None)."""
    group = parser.add_argument_group(f"request members ({request_type.__name__})")
    for field in member_fields(request_type):
        name = field.name
        spec = MEMBERS.get(name) or _default_member(field)
        group.add_argument(
            flag(name),
            *spec.aliases,
            dest=f"member_{name}",
            type=spec.type,
            metavar=spec.metavar or name.upper(),
            help=spec.help,
        )


def member_values(args: argparse.Namespace) -> dict[str, Any]:
    """The members given on the command line, as keyword arguments of the client's method."""
    prefix = "member_"
    return {
        key[len(prefix) :]: value
        for key, value in vars(args).items()
        if key.startswith(prefix) and value is not None
    }
