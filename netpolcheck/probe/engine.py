"""Probe many targets at once and classify each answer: allowed, refused, rejected or dropped.

How it works (one process, one thread, one epoll loop, a fixed number of sockets whatever the target count):
- every attempt is its own flow with its own source port, drawn from the kernel's ephemeral range
  (from the slice a wall clock points at: PortPicker says why) among ports no local socket holds and no
  target uses, so an answer names exactly one attempt;
- one raw socket sends everything (IP_HDRINCL): a TCP SYN, a UDP datagram carrying a nonce, an SCTP
  INIT with a random tag. No kernel socket holds the source port, so the pod's kernel answers a SYN-ACK
  with an RST and a UDP echo with ICMP port unreachable: harmless, the verdict only needs the answer;
- answers are read from one raw IPv4 socket per protocol (TCP, UDP, ICMP, and SCTP where the kernel has
  it), i.e. what reaches this pod's stack; ICMP errors are matched through the header they quote;
- attempts are spread evenly over the timeout window (attempt k at k * timeout / (retries + 1)) and
  only targets still without an answer are retried, so a matrix where everything is dropped ends one
  timeout after it started, not after (retries + 1) timeouts;
- a run that fails or is stopped (SIGTERM, SIGINT) part-way still reports every verdict it has: the
  targets it had not finished get verdict "error" with the reason.
Needs CAP_NET_RAW (raw sockets), nothing else.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import random
import secrets
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from netpolcheck.probe import packets
from netpolcheck.probe.errors import BadInput, shown
from netpolcheck.probe.targets import Target

ATTEMPT_UNITS = {"TCP": "SYN", "UDP": "datagram", "SCTP": "INIT"}
RAW_RECEIVE_BUFFER = 4 * 1024 * 1024
SO_TIMESTAMPNS = 35  # Linux; the kernel stamps each datagram on arrival, so rtt_ms excludes our own latency
TIMESPEC = struct.Struct("@qq")
DRAIN_EVERY = 128  # attempts sent between two reads of the answer queues, so a long round loses no answer
DEFAULT_PORT_RANGE = (32768, 60999)
PORT_PICKS = 10_000  # random draws before giving up on finding a free source port
REUSE_AFTER = 140.0  # seconds before a source port serves the same target again (conntrack, see RecentFlows)
PORT_CYCLE = 150.0  # seconds the source-port clock takes to go once round the ephemeral range (PortPicker)


@dataclass(slots=True)
class Attempt:
    number: int
    sport: int
    token: int  # TCP initial sequence number, SCTP initiate tag, UDP nonce
    sent_at: float  # Unix time, taken just before the packet was handed to the kernel
    # what this attempt alone showed (staggered watches judge every attempt; a one-shot run keeps the
    # first answer per target in ProbeState instead)
    verdict: str | None = None
    evidence: str = ""
    answered_at: float | None = None


@dataclass
class ProbeState:
    target: Target
    attempts: list[Attempt] = field(default_factory=list)
    verdict: str | None = None
    evidence: str = ""
    rtt_ms: float | None = None
    answered_by: int | None = None  # attempt number that drew the answer
    notes: list[str] = field(default_factory=list)
    foreign_answers: int = 0  # UDP datagrams from the target that did not echo our nonce
    packet: packets.SynToward | packets.UdpToward | None = None  # prebuilt before the clock starts

    def answer(self, verdict: str, evidence: str, attempt: Attempt, now: float) -> bool:
        """Record the first answer (`now` is its arrival, Unix time); False if one was already recorded."""
        if self.verdict is not None:
            return False
        self.verdict = verdict
        self.evidence = evidence
        self.answered_by = attempt.number
        self.rtt_ms = round(max(0.0, now - attempt.sent_at) * 1000.0, 3)
        return True

    def result(self, window_end: float, failure: str | None) -> dict[str, object]:
        """The result line; `window_end` (Unix time) is when the prober stopped listening, `failure` why
        the run ended early (None if it ran to the end)."""
        count = len(self.attempts)
        unit = ATTEMPT_UNITS[self.target.protocol]
        plural = "" if count == 1 else "s"
        if self.verdict is None and failure is not None:
            evidence = f"no verdict: {failure} (after {count} {unit}{plural}, before an answer or the end)"
            verdict, attempts, rtt = "error", count, None
        elif self.verdict is None:
            window = window_end - self.attempts[0].sent_at if self.attempts else 0.0
            evidence = f"no answer to {count} {unit}{plural} in {window:.1f} s"
            notes = list(self.notes)
            if self.foreign_answers:
                notes.append(f"{self.foreign_answers} UDP answers did not echo the probe's nonce")
            if notes:
                evidence += f" ({'; '.join(notes)})"
            verdict, attempts, rtt = "dropped", count, None
        else:
            verdict, evidence, rtt = self.verdict, self.evidence, self.rtt_ms
            attempts = count if self.answered_by is None else self.answered_by + 1
        return {
            "id": self.target.id,
            "verdict": verdict,
            "attempts": attempts,
            "rtt_ms": rtt,
            "evidence": evidence,
            "ip": self.target.ip,
            "port": self.target.port,
            "protocol": self.target.protocol,
        }


class Stopped(Exception):
    """A signal asked the run to stop; what it has so far is still reported."""


def udp_payload(nonce: int) -> bytes:
    return b"npcprobe %016x\n" % nonce


def open_raw_socket(protocol: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
    except PermissionError:
        raise BadInput(
            "probe needs the NET_RAW capability for raw sockets: run it as root or add NET_RAW to the pod"
        ) from None
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def sctp_unavailable() -> str | None:
    """Why this pod's kernel cannot do SCTP, or None if it can.

    Probing SCTP from a kernel without it would hang on what else runs: a raw SCTP socket here swallows
    INITs sent to this pod (127.0.0.1 always looked dropped), and a destination that is probing too
    swallows ours instead of answering protocol unreachable. So such targets are `unsupported`.
    """
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, packets.IPPROTO_SCTP).close()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return f"this pod's kernel has no SCTP (socket(IPPROTO_SCTP): {reason}), so it cannot probe SCTP"
    return None


def arrival_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9
    return time.time()


def local_ports_in_use() -> set[int]:
    """Local ports of this network namespace's TCP and UDP sockets (so a probe never borrows one)."""
    ports: set[int] = set()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 1 and ":" in fields[1]:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return DEFAULT_PORT_RANGE
    return (low, high) if 1024 <= low < high <= 65535 else DEFAULT_PORT_RANGE


class PortPicker:
    """Source ports from the ephemeral range that no local socket holds and no target uses (a port
    equal to another target's port could make our own loopback traffic look like its answer).

    Ports follow a clock: at wall time t the draws come from the slice of about span / PORT_CYCLE
    ports that t points at, moving on a second's worth each time draws keep failing. A pod's address is
    reused after the pod is gone (IPAM hands it to the next pod), and the node's conntrack still holds
    the old pod's answered flows (UDP 30 s, or 120 s once assured); a new pod whose agent drew a port
    the old one used toward the same target would pass a deny as ESTABLISHED. Random draws made that
    likely once agents send thousands of attempts (staggered watches); with the clock, two pods that
    share an address share a port only if one probed less than a slice's time before the other, or a
    whole cycle (150 s, longer than any of those entries live) earlier. Every process on every node reads
    the same clock, so this holds without any shared state."""

    def __init__(self, target_ports: set[int], generator: random.Random) -> None:
        low, high = ephemeral_range()
        self.low, self.span = low, high - low + 1
        self.per_second = max(1, int(self.span / PORT_CYCLE))
        self.avoid = local_ports_in_use() | target_ports
        self.random = generator.random
        self.clock = time.time

    def pick(self, taken: Container[tuple[int, str, int, int]], protocol: int, ip: str, port: int) -> int:
        toward = (protocol, ip, port)
        now = int(self.clock() * self.per_second)
        start = max(now, CURSORS.get(toward, now))  # where this process last found a free slice
        for draw in range(PORT_PICKS):
            ahead = (draw // 16) * self.per_second  # every 16 failed draws: the next second's slice
            slot = start + ahead + int(self.random() * self.per_second)
            sport = self.low + slot % self.span
            fresh = sport not in self.avoid and (protocol, ip, port, sport) not in taken
            if fresh and RECENT.claim(toward, sport):
                CURSORS[toward] = start + ahead
                return sport
        raise RuntimeError(f"no free source port toward {ip}:{port} after {PORT_PICKS} draws")


class RecentFlows:
    """Source ports this process used toward each (protocol, ip, port) in the last REUSE_AFTER seconds.

    A flow that was answered leaves a conntrack entry on the way (30 s for UDP, 120 s or more once
    "assured"); a later attempt on the same 5-tuple would match that entry as ESTABLISHED and pass a
    policy that denies new flows. One process sends one attempt per run and target per 125 ms at most, so
    a one-shot run hardly ever repeats a port; the resident agent sends thousands per target (staggered
    watches, every round), so it must remember them across runs."""

    def __init__(self) -> None:
        self.used: dict[tuple[int, str, int], dict[int, float]] = {}
        self.order: dict[tuple[int, str, int], collections.deque[tuple[float, int]]] = {}
        self.lock = threading.Lock()

    def claim(self, toward: tuple[int, str, int], sport: int) -> bool:
        """Take `sport` toward `toward` unless it was used there within REUSE_AFTER seconds."""
        now = time.monotonic()
        with self.lock:
            ports = self.used.setdefault(toward, {})
            order = self.order.setdefault(toward, collections.deque())
            while order and now - order[0][0] >= REUSE_AFTER:  # forget what has aged out
                at, old = order.popleft()
                if ports.get(old) == at:
                    del ports[old]
            if sport in ports:
                return False
            ports[sport] = now
            order.append((now, sport))
            return True


RECENT = RecentFlows()
CURSORS: dict[tuple[int, str, int], int] = {}  # per target: the slice PortPicker last drew from


class StopSignals:
    """SIGTERM and SIGINT stop the run: while `armed` (the run is sending and listening) they raise
    Stopped, so the run reports what it has; before that they are remembered and take effect when it
    arms; once the results are being written they are held off, so the output is never cut in half."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.armed = False
        self.pending: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        for number in self.SIGNALS:
            self.previous[number] = signal.signal(number, self.stop)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.pending = self.pending or signal.Signals(signum).name
        if self.armed:
            self.arm()

    def arm(self) -> None:
        self.armed = self.pending is None
        if self.pending is not None:  # disarmed first: a second signal must not interrupt the report
            raise Stopped(f"the run was stopped by {self.pending}")


def describe_failure(exc: BaseException, elapsed: float) -> str:
    if isinstance(exc, Stopped):
        return f"{exc} after {elapsed:.1f} s"
    if isinstance(exc, OSError) and exc.strerror:
        return f"the run failed after {elapsed:.1f} s: {exc.strerror}"
    return f"the run failed after {elapsed:.1f} s: {type(exc).__name__}: {shown(str(exc), 120)}"


class Prober:
    """One run over a target list; `run()` returns one result dict per target, in input order, and why
    the run ended early (None when it ran to the end)."""

    def __init__(self, targets: list[Target], timeout: float, retries: int, signals: StopSignals) -> None:
        self.signals = signals
        self.states = [ProbeState(t) for t in targets]
        self.unanswered = len(self.states)
        self.timeout = timeout
        self.retries = retries
        wants_sctp = any(t.protocol == "SCTP" for t in targets)
        self.sctp_missing = sctp_unavailable() if wants_sctp else None
        protocols = [socket.IPPROTO_TCP, socket.IPPROTO_UDP, socket.IPPROTO_ICMP]
        if wants_sctp and self.sctp_missing is None:
            protocols.append(packets.IPPROTO_SCTP)
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        try:
            self.sender = self.own(open_raw_socket(socket.IPPROTO_RAW))
            for proto in protocols:
                sock = self.own(open_raw_socket(proto))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RAW_RECEIVE_BUFFER)
                self.selector.register(sock, selectors.EVENT_READ, proto)
        except BaseException:
            self.close()
            raise
        # (protocol number, target ip, target port, source port) -> the state and attempt it belongs to
        self.flows: dict[tuple[int, str, int, int], tuple[ProbeState, Attempt]] = {}
        self.source_addresses: dict[str, str | OSError] = {}
        # seeded from the OS: source ports and tokens must not be guessable from outside the pod
        self.random = random.Random(secrets.randbits(128))
        self.ports = PortPicker({t.port for t in targets}, self.random)
        self.icmp_errors_from_target: dict[str, int] = {}  # target ip -> ICMP errors matched to its probes

    def own(self, sock: socket.socket) -> socket.socket:
        self.sockets.append(sock)
        return sock

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()

    def run(self) -> tuple[list[dict[str, object]], str | None]:
        failure = None
        start = time.monotonic()
        try:
            self.signals.arm()
            self.prepare()  # a BadInput here means nothing was sent: it propagates
            start = time.monotonic()
            self.exchange(start)
        except BadInput:
            raise
        except Exception as exc:
            self.signals.armed = False
            failure = describe_failure(exc, time.monotonic() - start)
            with contextlib.suppress(Exception):
                self.poll(0.0)  # answers already queued still count
        finally:
            self.signals.armed = False
            self.close()
        self.note_icmp_rate_limit()
        window_end = time.time()
        return [s.result(window_end, failure) for s in self.states], failure

    def exchange(self, start: float) -> None:
        interval = self.timeout / (self.retries + 1)
        last_round_sent = start
        for number in range(self.retries + 1):
            self.receive_until(start + number * interval)
            pending = [s for s in self.states if s.verdict is None]
            if not pending:
                break
            for index, state in enumerate(pending, 1):
                self.send_attempt(state, number)
                if index % DRAIN_EVERY == 0:
                    self.poll(0.0)
            last_round_sent = time.monotonic()
        # the window is the timeout, but never shorter than one interval after the last attempt went out
        # (on a loaded machine sending a round can take a while; late sends must not lose their answers)
        self.receive_until(max(start + self.timeout, last_round_sent + interval))

    def note_icmp_rate_limit(self) -> None:
        """Flag silence from a host that sent ICMP errors in this run: its kernel may have suppressed more.

        Linux rate-limits ICMP errors per peer (net.ipv4.icmp_ratelimit: a burst of 6, then 1 per second),
        so a REJECT or a closed UDP port can go silent, which looks like a drop. The verdict stays
        `dropped` (that is what was seen); the evidence says why it may not be a drop.
        """
        for state in self.states:
            count = self.icmp_errors_from_target.get(state.target.ip, 0)
            if state.verdict is None and count:
                state.notes.append(
                    f"{state.target.ip} sent {count} ICMP errors to other probes in this run and rate-limits "
                    "them, so this silence may be a suppressed error"
                )

    def prepare(self) -> None:
        """Everything before the clock starts: scapy's import and builds, each target's source address
        (refusing a broadcast address before anything is sent), SCTP targets this kernel cannot probe."""
        syn = packets.SynTemplate() if any(s.target.protocol == "TCP" for s in self.states) else None
        if self.sctp_missing is not None:
            for state in self.states:
                if state.target.protocol == "SCTP":
                    state.verdict, state.evidence = "unsupported", self.sctp_missing
                    self.unanswered -= 1
        elif any(s.target.protocol == "SCTP" for s in self.states):
            packets.sctp_init("127.0.0.1", "127.0.0.1", 1, 1, 1)
        for state in self.states:
            target = state.target
            if state.verdict is not None:
                continue
            if target.ip not in self.source_addresses:
                self.source_addresses[target.ip] = self.route(target)
            source = self.source_addresses[target.ip]
            if isinstance(source, OSError):
                continue
            if target.protocol == "TCP":
                assert syn is not None
                state.packet = syn.toward(source, target.ip, target.port)
            elif target.protocol == "UDP":
                state.packet = packets.UdpToward(source, target.ip, target.port, len(udp_payload(0)))

    # sending ---------------------------------------------------------------------------------------

    @staticmethod
    def route(target: Target) -> str | OSError:
        """The address this pod's routing picks to reach the target (no packet is sent to find it)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((target.ip, 9))
            except PermissionError:  # EACCES: the route is a broadcast one
                raise BadInput(
                    f"target {shown(target.id)}: {target.ip} is a broadcast address for this pod, not a host"
                ) from None
            except OSError as exc:
                return exc
            address: str = sock.getsockname()[0]
            return address

    def send_attempt(self, state: ProbeState, number: int) -> None:
        target = state.target
        source = self.source_addresses[target.ip]
        now = time.time()
        if isinstance(source, OSError):
            attempt = Attempt(number, 0, 0, now)
            state.attempts.append(attempt)
            reason = source.strerror or str(source)
            self.answer(state, "rejected", f"no route to {target.ip} from this pod ({reason})", attempt, now)
            return
        protocol = packets.PROTOCOL_NUMBERS[target.protocol]
        sport = self.ports.pick(self.flows, protocol, target.ip, target.port)
        token = self.random.getrandbits(32) or 1
        attempt = Attempt(number, sport, token, now)
        packet = state.packet
        if isinstance(packet, packets.SynToward):
            wire = packet.stamp(sport, token)
        elif isinstance(packet, packets.UdpToward):
            wire = packet.stamp(sport, udp_payload(token))
        else:
            wire = packets.sctp_init(source, target.ip, sport, target.port, token)
        self.flows[(protocol, target.ip, target.port, sport)] = (state, attempt)
        state.attempts.append(attempt)
        self.transmit(state, attempt, wire)

    def transmit(self, state: ProbeState, attempt: Attempt, wire: bytes) -> None:
        try:
            sent_at = time.time()
            self.sender.sendto(wire, (state.target.ip, 0))
            attempt.sent_at = sent_at
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                evidence = f"no route to {state.target.ip} from this pod"
                self.answer(state, "rejected", evidence, attempt, time.time())
            elif exc.errno == errno.EPERM:
                note = "sending was refused by a filter in this pod (EPERM)"
                if note not in state.notes:
                    state.notes.append(note)
            # anything else (ENOBUFS, ...) counts as a lost attempt: the next attempt retries it

    # receiving -------------------------------------------------------------------------------------

    def answer(self, state: ProbeState, verdict: str, evidence: str, attempt: Attempt, now: float) -> None:
        if state.answer(verdict, evidence, attempt, now):
            self.unanswered -= 1

    def receive_until(self, until: float) -> None:
        """Read answers until `until` (monotonic); always reads what is already queued, even when late."""
        while self.unanswered:
            remaining = max(0.0, until - time.monotonic())
            self.poll(remaining)
            if remaining == 0.0:
                return

    def poll(self, wait: float) -> None:
        for key, _ in self.selector.select(wait):
            self.drain(key)

    def drain(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        while True:
            try:
                data, ancillary, _, _ = sock.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # a pending socket error (not expected on unconnected raw sockets): read on next wake
            self.dispatch(key.data, data, arrival_time(ancillary))

    def dispatch(self, protocol: int, datagram: bytes, now: float) -> None:
        """Hand an answer to its protocol's reader with the attempt it belongs to (ICMP errors are matched
        through the header they quote, everything else by (src, sport) -> our dport)."""
        if protocol == socket.IPPROTO_ICMP:
            self.on_icmp(datagram, now)
            return
        parse, handle = READERS[protocol]
        answer = parse(datagram)
        flow = None if answer is None else self.flows.get((protocol, answer.src, answer.sport, answer.dport))
        if flow is not None:
            handle(self, answer, flow[0], flow[1], now)

    def on_tcp(self, answer: packets.TcpAnswer, state: ProbeState, attempt: Attempt, now: float) -> None:
        if answer.ack != (attempt.token + 1) % 2**32:
            return
        where = f"{answer.src}:{answer.sport}"
        syn_ack = packets.TCP_SYN | packets.TCP_ACK
        if answer.flags & syn_ack == syn_ack:
            self.answer(state, "allowed", f"SYN-ACK from {where}", attempt, now)
        elif answer.flags & packets.TCP_RST:
            self.answer(state, "refused", f"RST from {where}", attempt, now)

    def on_udp(self, answer: packets.UdpDatagram, state: ProbeState, attempt: Attempt, now: float) -> None:
        if answer.payload == udp_payload(attempt.token):
            self.answer(state, "allowed", f"UDP echo from {answer.src}:{answer.sport}", attempt, now)
        else:
            state.foreign_answers += 1

    def on_sctp(self, answer: packets.SctpAnswer, state: ProbeState, attempt: Attempt, now: float) -> None:
        where = f"{answer.src}:{answer.sport}"
        if answer.chunk_type == 2 and answer.tag == attempt.token:
            self.answer(state, "allowed", f"INIT-ACK from {where}", attempt, now)
        elif answer.chunk_type == 6:
            self.answer(state, "refused", f"ABORT from {where}", attempt, now)

    def on_icmp(self, datagram: bytes, now: float) -> None:
        error = packets.parse_icmp_error(datagram)
        if error is None:
            return
        key = (error.quoted_protocol, error.quoted_dst, error.quoted_dport, error.quoted_sport)
        flow = self.flows.get(key)
        if flow is None:
            return
        state, attempt = flow
        errors = self.icmp_errors_from_target
        errors[state.target.ip] = errors.get(state.target.ip, 0) + 1
        name = packets.ICMP_UNREACH_NAMES.get(error.code, "unreachable")
        evidence = f"ICMP type {error.type} code {error.code} from {error.src} ({name})"
        verdict = "refused" if error.code == packets.ICMP_PORT_UNREACH else "rejected"
        self.answer(state, verdict, evidence, attempt, now)


# protocol number -> (parser of its answers, the Prober method that judges one)
READERS: dict[int, tuple[Callable[[bytes], Any], Callable[..., None]]] = {
    packets.IPPROTO_TCP: (packets.parse_tcp_answer, Prober.on_tcp),
    packets.IPPROTO_UDP: (packets.parse_udp, Prober.on_udp),
    packets.IPPROTO_SCTP: (packets.parse_sctp_answer, Prober.on_sctp),
}


def probe_targets(
    targets: list[Target], timeout: float, retries: int, signals: StopSignals
) -> tuple[list[dict[str, object]], str | None]:
    """Every target's result, in input order, and why the run ended early (None if it did not). Call it
    inside `with StopSignals() as signals:` and write the results before leaving that block."""
    # an empty list still opens the raw sockets, so a missing privilege shows up at once
    return Prober(targets, timeout, retries, signals).run()
