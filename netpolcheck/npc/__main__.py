"""`python -m netpolcheck.npc`: the reference Weave-style policy controller for one node.

Runs in the node's network namespace (hostNetwork), like weave-npc: flushes its chains and weave-*
sets, lists and watches namespaces, pods and network policies through the in-cluster API client,
and programs ipsets and WEAVE-NPC* chains. Blocked connections (NFLOG group 86) are logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from netpolcheck.errors import UsageError
from netpolcheck.npc import weavelog
from netpolcheck.npc.faults import FAULTS, parse_faults
from netpolcheck.npc.metrics import Metrics
from netpolcheck.npc.profiles import PROFILES, Profile, profile_for

DEFAULT_VERSION = "2.8.1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m netpolcheck.npc", description=__doc__.splitlines()[0])
    parser.add_argument("--node-name", default="", help="this node's name (default: $HOSTNAME)")
    parser.add_argument(
        "--version",
        default="",
        help=f"weave-npc version to reproduce: {', '.join(PROFILES)} "
        f"(default: the tag of $HOLLOW_IMAGE, else {DEFAULT_VERSION})",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="break the controller on purpose (repeatable; default: none): " + ", ".join(FAULTS),
    )
    parser.add_argument(
        "--metrics-addr", default=":6781", help="serve /metrics here; empty to disable (default :6781)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe messages logged (default info)",
    )
    parser.add_argument(
        "--serviceaccount-dir",
        type=Path,
        default=Path("/var/run/secrets/kubernetes.io/serviceaccount"),
        help="where the in-cluster token and ca.crt are "
        "(default /var/run/secrets/kubernetes.io/serviceaccount)",
    )
    parser.add_argument(
        "--watch-timeout", type=int, default=300, help="seconds per watch request (default 300)"
    )
    return parser


def choose_profile(version: str) -> Profile:
    return profile_for(version or os.environ.get("HOLLOW_IMAGE", "") or DEFAULT_VERSION)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"netpolcheck.npc: error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    faults = parse_faults(args.fault)
    profile = choose_profile(args.version)
    node_name = args.node_name or os.environ.get("HOSTNAME", "")
    if not node_name:
        raise UsageError("no node name: pass --node-name or set $HOSTNAME")
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        raise UsageError("not in a cluster: KUBERNETES_SERVICE_HOST is not set")
    if not (args.serviceaccount_dir / "token").is_file():
        raise UsageError(f"no service-account token in {args.serviceaccount_dir}")

    # imported late so that `--help` and usage errors stay fast
    from netpolcheck.npc.controller import Controller
    from netpolcheck.npc.kubewatch import ApiClient, CollectionWatcher
    from netpolcheck.npc.runner import Runner

    log = weavelog.setup(args.log_level)
    log.info('Starting Weaveworks NPC %s (netpolcheck reference); node name "%s"', profile.version, node_name)
    if faults:
        log.warning("fault switches on: %s", ", ".join(sorted(faults)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    metrics = Metrics()
    if args.metrics_addr:
        metrics.serve(args.metrics_addr)
        log.info("Serving /metrics on %s", args.metrics_addr)
    controller = Controller(profile, node_name, faults, Runner(), log, metrics)
    controller.start()
    start_blocked_logger(log, metrics, stop)

    client = ApiClient(args.serviceaccount_dir)
    policies = (
        "/apis/extensions/v1beta1/networkpolicies"
        if profile.legacy
        else "/apis/networking.k8s.io/v1/networkpolicies"
    )
    for kind, path in (
        ("Pod", "/api/v1/pods"),
        ("Namespace", "/api/v1/namespaces"),
        ("NetworkPolicy", policies),
    ):
        CollectionWatcher(client, kind, path, controller.events, stop, args.watch_timeout).start()
    controller.run(stop)
    log.info("Exiting: terminated")
    return 0


def start_blocked_logger(log: logging.Logger, metrics: Metrics, stop: threading.Event) -> None:
    """Log NFLOG group 86 packets as weave-npc does; without the group (taken, no privilege) just say so."""
    from netpolcheck.npc.nflog import Blocked, NflogReader

    try:
        reader = NflogReader()
    except OSError as exc:
        log.error("cannot read NFLOG group 86, blocked connections will not be logged: %s", exc)
        return

    def report(blocked: Blocked) -> None:
        log.warning(blocked.message())
        metrics.count_blocked(blocked.protocol, blocked.dport)

    threading.Thread(target=reader.run, args=(report, stop.is_set), name="nflog", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
