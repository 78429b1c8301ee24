"""The STATE of a live cluster (`--kubeconfig K [--context C] [--namespace N]...`), read through
`netpolcheck.kube`'s snapshot: namespaces, pods with an IP and NetworkPolicies, read-only. Probes are
the ports the pods declare (the model's TCP 80 when they declare none). An unusable kubeconfig, an
unreachable cluster or a refused request is one `UsageError` line.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from netpolcheck.commands.inputs import load_state
from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable
from netpolcheck.model.manifests import declared_probes
from netpolcheck.model.state import State, parse_state

if TYPE_CHECKING:  # the kubernetes client loads only when a command talks to a cluster
    from netpolcheck.kube.connection import KubeApi

REACH_TIMEOUT = 10.0  # seconds per attempt for the first request, so an unreachable server fails soon


def add_source_arguments(parser: argparse.ArgumentParser, metavar: str, help_text: str) -> None:
    """The positional STATE (optional here: `--kubeconfig` is the other source) and the cluster options."""
    parser.add_argument("state", metavar=metavar, nargs="?", help=f"{help_text}; or give --kubeconfig")
    add_cluster_arguments(
        parser.add_argument_group("a live cluster instead of STATE (read-only)"),
        "read namespaces, pods and NetworkPolicies from this cluster; probes are the pods' "
        "declared container ports",
        "with --kubeconfig: the kubeconfig context to use",
        "with --kubeconfig: only this namespace (repeatable; default: every namespace)",
    )


def add_cluster_arguments(
    parser: argparse._ActionsContainer,
    kubeconfig_help: str,
    context_help: str,
    namespace_help: str,
    required: bool = False,
) -> None:
    """`--kubeconfig FILE`, `--context` and `--namespace NAME` (repeatable, into `namespaces`): how a
    command names a live cluster and the namespaces it reads (`connect`, `cluster_state`)."""
    parser.add_argument("--kubeconfig", required=required, metavar="FILE", help=kubeconfig_help)
    parser.add_argument("--context", help=context_help)
    parser.add_argument(
        "--namespace", dest="namespaces", action="append", metavar="NAME", help=namespace_help
    )


def state_from(args: argparse.Namespace, metavar: str) -> State:
    """The STATE a command was given: the positional source, or the cluster of `--kubeconfig`."""
    if args.kubeconfig is None:
        for option, value in (("--context", args.context), ("--namespace", args.namespaces)):
            if value is not None:
                raise UsageError(f"{option} reads a live cluster; give --kubeconfig too")
        if args.state is None:
            raise UsageError(
                f"{args.command}: the following arguments are required: {metavar} (or --kubeconfig)"
            )
        return load_state(args.state)
    if args.state is not None:
        raise UsageError(f"{printable(args.state)}: give {metavar} or --kubeconfig, not both")
    return cluster_state(args.kubeconfig, args.context, args.namespaces)


def cluster_state(kubeconfig: str, context: str | None, namespaces: Sequence[str] | None) -> State:
    """The validated STATE of the cluster (of `namespaces` only, when given)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from netpolcheck.kube.snapshot import snapshot

    api, server = connect(kubeconfig, context)
    wanted = list(dict.fromkeys(namespaces)) if namespaces else None
    doing = "asking for its version"
    try:
        # one short request first: an unreachable server is named soon, before any listing
        api.request("GET", "/version", timeout=REACH_TIMEOUT)
        doing = "reading namespaces, pods and NetworkPolicies"
        document = snapshot(api, wanted)
    except (ApiException, HTTPError, OSError) as exc:
        raise cluster_error(server, doing, exc) or exc from None
    finally:
        api.close()
    missing = sorted(set(wanted or ()) - {n["name"] for n in document["namespaces"]})
    if missing:
        raise UsageError(
            f"--namespace: no such namespace in the cluster at {server}: {printable(', '.join(missing))}"
        )
    document["probes"] = declared_probes(document["pods"])
    return parse_state(document)


def connect(kubeconfig: str, context: str | None) -> tuple[KubeApi, str]:
    """A client for the kubeconfig's cluster, and its server address as messages show it."""
    from netpolcheck.kube.connection import KubeApi

    api = KubeApi.from_kubeconfig(kubeconfig, context)
    return api, printable(api.api_client.configuration.host or "(no server)")


def cluster_error(server: str, doing: str, exc: BaseException) -> UsageError | None:
    """The one-line message for an API refusal or an unreachable server; None for other errors."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        detail = printable(str(_api_message(exc.body) or exc.reason or ""))
        return UsageError(f"the cluster at {server} refused {doing}: HTTP {exc.status} {detail}".rstrip())
    if isinstance(exc, (HTTPError, OSError)):
        return UsageError(f"cannot reach the cluster at {server}: {printable(_root_cause(exc))}")
    return None


def _api_message(body: Any) -> str | None:
    """The `message` of a Kubernetes Status body, if the body is one."""
    import json

    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    return message if isinstance(message, str) else None


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a urllib3 error (`Connection refused`, `certificate verify failed`)."""
    seen: BaseException = exc
    while True:
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException):
            inner = seen.__cause__ or seen.__context__
        if inner is None or inner is seen:
            break
        seen = inner
    text = getattr(seen, "strerror", None) or str(seen)
    return " ".join(str(text).split())
