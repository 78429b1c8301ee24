"""`python -m netpolcheck.probe serve|probe|ask|journal|hold|hold-status|hold-stop` (see docs/probe.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from netpolcheck.probe.errors import BadInput, shown, shown_path

PROG = "netpolcheck.probe"
EXIT_USAGE = 2
EXIT_PARTIAL = 3  # `probe` stopped early: stdout still lists every target, the unfinished ones as "error"
EXIT_NO_AGENT = 4  # `ask`: no resident agent answers in this pod (and the request cannot run one-shot)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        # argparse echoes unrecognized arguments verbatim: escape what would break the one line
        printable = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        raise BadInput(f"{self.prog}: {printable[:300]}")


def port_list(text: str) -> list[int]:
    ports = []
    for part in text.split(","):
        digits = part.strip()
        if not (digits.isascii() and digits.isdigit() and len(digits) <= 5 and 1 <= int(digits) <= 65535):
            raise argparse.ArgumentTypeError(f"{shown(part)} is not a port in 1-65535")
        ports.append(int(digits))
    return ports


def port(text: str) -> int:
    (value,) = port_list(text)
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{shown(text)} seconds is out of range (0, 3600]")
    return value


def retry_count(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and int(text) <= 100):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a retry count in 0-100")
    return int(text)


def ipv4(text: str) -> str:
    from netpolcheck.probe.targets import parse_ipv4

    try:
        return parse_ipv4(text, "--ip")
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Probe agent of netpolcheck (runs inside probe pods).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.required = True

    probe = commands.add_parser("probe", help="probe a JSON list of targets read from stdin")
    probe.add_argument(
        "--timeout",
        type=positive_seconds,
        default=1.0,
        help="window in seconds for all attempts of a target (default 1.0)",
    )
    probe.add_argument(
        "--retries",
        type=retry_count,
        default=7,
        help="extra attempts for targets without an answer, spread over the window (default 7)",
    )
    probe.add_argument("--targets", default="-", help="read targets from this file (default: -, stdin)")

    ask = commands.add_parser("ask", help="send a request to this pod's resident agent (started by serve)")
    ask.add_argument(
        "--op",
        choices=["probe", "watch", "settle", "stop", "timeline"],
        default="probe",
        help="the request (default probe)",
    )
    ask.add_argument("--targets", default="-", help="read targets from this file (default: -, stdin)")
    ask.add_argument(
        "--timeout",
        type=positive_seconds,
        default=1.0,
        help="probe: window for all attempts; watch/settle: window of each attempt (default 1.0)",
    )
    ask.add_argument(
        "--retries", type=retry_count, default=7, help="probe, settle's confirm: extra attempts (default 7)"
    )
    ask.add_argument(
        "--interval", type=positive_seconds, default=0.01, help="watch/settle: seconds between attempts"
    )
    ask.add_argument(
        "--limit", type=positive_seconds, default=60.0, help="watch/settle: the watch stops after this"
    )
    ask.add_argument(
        "--deadline", type=positive_seconds, default=15.0, help="settle: give up after this many seconds"
    )
    ask.add_argument(
        "--silence",
        type=positive_seconds,
        default=0.3,
        help="watch/settle: seconds a run of unanswered attempts must last to count as dropped (default 0.3)",
    )
    ask.add_argument(
        "--confirm-timeout",
        type=positive_seconds,
        default=None,
        help="settle: then probe every target once more as probe does, with this window (default: no)",
    )
    ask.add_argument(
        "--watch", default=None, help="settle/stop/timeline: the id a watch request answered"
    )
    ask.add_argument("--journal", default=None, help="journal file of the serve (default as for serve)")

    serve = commands.add_parser("serve", help="echo listeners that journal what arrived; prints READY")
    serve.add_argument("--tcp", type=port_list, default=[], help="TCP ports, e.g. 80,81 (default: none)")
    serve.add_argument("--udp", type=port_list, default=[], help="UDP ports (default: none)")
    serve.add_argument(
        "--sctp", type=port_list, default=[], help="SCTP ports, where the kernel has SCTP (default: none)"
    )
    serve.add_argument(
        "--journal",
        default=None,
        help="journal file (default $NETPOLCHECK_PROBE_JOURNAL, else "
        "/tmp/netpolcheck-probe/journal-$HOSTNAME.jsonl)",
    )

    journal = commands.add_parser("journal", help="print the serve journal (JSON lines), optionally filtered")
    journal.add_argument("--journal", default=None, help="journal file (default as for serve)")
    journal.add_argument("--peer", type=ipv4, default=None, help="only records from this IP (default: any)")
    journal.add_argument(
        "--proto",
        choices=["tcp", "udp", "sctp"],
        default=None,
        help="only records of this protocol (default: any)",
    )
    journal.add_argument("--port", type=port, default=None, help="only records to this port (default: any)")
    journal.add_argument(
        "--since", type=float, default=None, help="only records at or after this Unix time (default: all)"
    )

    ready = commands.add_parser("ready", help="exit 0 while serve is up (for a readiness probe), else 1")
    ready.add_argument("--journal", default=None, help="journal file of the serve (default as for serve)")

    hold = commands.add_parser("hold", help="hold a TCP connection (and a UDP flow) and record every gap")
    hold.add_argument("--ip", type=ipv4, required=True, help="IPv4 address of a serve listener")
    hold.add_argument("--port", type=port, required=True, help="TCP port of a serve listener")
    hold.add_argument("--udp-port", type=port, default=None, help="also keep a UDP flow to this port")
    hold.add_argument(
        "--interval", type=positive_seconds, default=0.1, help="seconds between ticks (default 0.1)"
    )
    hold.add_argument(
        "--late-after",
        type=positive_seconds,
        default=None,
        help="a tick without an echo after this many seconds is lost (default: 2 x interval)",
    )
    hold.add_argument("--status", required=True, help="status file, rewritten every tick")
    hold.add_argument(
        "--duration",
        type=positive_seconds,
        default=None,
        help="end after this many seconds (default: run until hold-stop)",
    )
    hold.add_argument(
        "--connect-timeout",
        type=positive_seconds,
        default=3.0,
        help="seconds to wait for the TCP connection (default 3.0)",
    )
    hold.add_argument(
        "--background", action="store_true", help="detach; print the first status once connected, and return"
    )

    for name, text in (
        ("hold-status", "print a hold's status file"),
        ("hold-stop", "stop a background hold and print its final report"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--status", required=True, help="the status file given to hold")
        if name == "hold-stop":
            sub.add_argument(
                "--timeout",
                type=positive_seconds,
                default=5.0,
                help="seconds to wait for the hold to stop and report (default 5.0)",
            )
    return parser


def run_probe(args: argparse.Namespace) -> int:
    from netpolcheck.probe.inputs import read_input
    from netpolcheck.probe.targets import parse_targets

    targets = parse_targets(read_input(args.targets, "targets"))
    from netpolcheck.probe.engine import StopSignals, probe_targets

    with StopSignals() as signals:  # a signal stops the run, never the writing of its results
        results, failure = probe_targets(targets, args.timeout, args.retries, signals)
        print(json.dumps(results), flush=True)
    if failure is None:
        return 0
    missing = sum(1 for r in results if r["verdict"] == "error")
    print(
        f"{PROG}: error: {failure}; {missing} of {len(results)} targets have no verdict "
        '(verdict "error" in the output), the others keep theirs',
        file=sys.stderr,
        flush=True,
    )
    return EXIT_PARTIAL


def run_ask(args: argparse.Namespace) -> int:
    from netpolcheck.probe.ask import NoAgent, ask, socket_path
    from netpolcheck.probe.inputs import load_json, read_input
    from netpolcheck.probe.journal import default_path

    request: dict[str, object] = {"op": args.op}
    text = "[]"
    if args.op not in ("stop", "timeline"):
        text = read_input(args.targets, "targets")
        request["targets"] = load_json(text, "targets")
        request["timeout"] = args.timeout
    if args.op == "probe":
        request["retries"] = args.retries
    if args.op in ("watch", "settle"):
        request.update(interval=args.interval, limit=args.limit, silence=args.silence)
    confirm = args.confirm_timeout if args.op == "settle" else None
    if args.op == "settle":
        request["deadline"] = args.deadline
    if confirm is not None:
        request.update(confirm_timeout=confirm, retries=args.retries)
    if args.watch is not None:
        request["watch"] = args.watch
    waits = {"probe": args.timeout * 4, "settle": args.deadline + args.timeout}.get(args.op, 0.0)
    waits += (confirm or 0.0) * 4
    try:
        answer = ask(socket_path(args.journal or default_path()), request, waits + 30.0)
    except NoAgent as exc:
        if args.op != "probe":
            print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
            return EXIT_NO_AGENT
        answer = one_shot(text, args.timeout, args.retries, str(exc))
    if "error" in answer:
        raise BadInput(f"the resident agent refused the request: {answer['error']}")
    print(json.dumps(answer), flush=True)
    return EXIT_PARTIAL if answer.get("failure") else 0


def one_shot(text: str, timeout: float, retries: int, reason: str) -> dict[str, object]:
    """The fallback when no resident agent answers: the one-shot engine, here, and the answer says so."""
    from netpolcheck.probe.engine import StopSignals, probe_targets
    from netpolcheck.probe.targets import parse_targets

    targets = parse_targets(text)
    with StopSignals() as signals:
        results, failure = probe_targets(targets, timeout, retries, signals)
    return {"agent": "one-shot", "fallback": reason, "results": results, "failure": failure}


def run_serve(args: argparse.Namespace) -> int:
    from netpolcheck.probe.journal import default_path
    from netpolcheck.probe.serve import run_serve as serve

    return serve(args.tcp, args.udp, args.sctp, args.journal or default_path())


def run_journal(args: argparse.Namespace) -> int:
    from netpolcheck.probe.journal import default_path, matches, read_journal

    path = args.journal or default_path()
    if not os.path.exists(path):
        raise BadInput(f"no journal at {shown_path(path)} (is serve running with this --journal?)")
    records = list(read_journal(path))  # a damaged journal is reported before anything is printed
    for record in records:
        if matches(record, args.peer, args.proto, args.port, args.since):
            print(json.dumps(record, sort_keys=True))
    return 0


def run_ready(args: argparse.Namespace) -> int:
    from netpolcheck.probe.journal import default_path
    from netpolcheck.probe.serve import is_ready

    return 0 if is_ready(args.journal or default_path()) else 1


def run_hold(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import subprocess  # here, not at the top: every `ask` exec would pay for it

    from netpolcheck.probe.hold import Holder, wait_for_status

    late_after = args.late_after or 2 * args.interval
    if args.background:
        try:
            if os.path.lexists(args.status):
                os.unlink(args.status)  # a link is removed, never followed
        except OSError as exc:
            raise BadInput(
                f"cannot replace the status file {shown_path(args.status)}: {exc.strerror}"
            ) from None
        child_argv = [a for a in argv if a != "--background"]
        child = subprocess.Popen(
            [sys.executable, "-m", PROG, *child_argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        status = wait_for_status(args.status, args.connect_timeout + 5.0, ready="running")
        if status is None:
            child.terminate()
            child.wait(5)
            raise BadInput(f"background hold (pid {child.pid}) wrote no status to {shown_path(args.status)}")
        print(json.dumps(status, sort_keys=True), flush=True)
        return 0 if status["state"] == "running" else 1
    holder = Holder(
        args.ip, args.port, args.udp_port, args.interval, late_after, args.status, args.connect_timeout
    )
    code = holder.run(args.duration)
    print(json.dumps(holder.status(), sort_keys=True), flush=True)
    return code


def run_hold_status(args: argparse.Namespace) -> int:
    from netpolcheck.probe.hold import read_status

    print(json.dumps(read_status(args.status), sort_keys=True))
    return 0


def run_hold_stop(args: argparse.Namespace) -> int:
    from netpolcheck.probe.hold import stop_hold

    print(json.dumps(stop_hold(args.status, args.timeout), sort_keys=True))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
        handlers = {
            "probe": run_probe,
            "ask": run_ask,
            "serve": run_serve,
            "journal": run_journal,
            "ready": run_ready,
            "hold-status": run_hold_status,
            "hold-stop": run_hold_stop,
        }
        if args.command == "hold":
            return run_hold(args, arguments)
        return handlers[args.command](args)
    except BadInput as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
