"""Probe many targets at once and classify each answer: allowed, refused, rejected or dropped.

How it works (one process, one thread, one epoll loop):
- every attempt is its own flow with its own source port, so an answer names exactly one attempt:
  TCP sends a scapy SYN from a port reserved by binding a kernel socket to it (the kernel answers the
  SYN-ACK with an RST because that socket is not connecting: harmless, it frees the server's half-open
  connection; the verdict only needs the SYN-ACK); UDP sends a nonce from a kernel UDP socket and only
  the same nonce echoed back from the target counts; SCTP sends a scapy INIT with a random tag;
- answers are read from raw IPv4 sockets (TCP, SCTP, ICMP), i.e. what reaches this pod's stack;
  ICMP errors are matched through the header they quote;
- attempts are spread evenly over the timeout window (attempt k at k * timeout / (retries + 1)) and
  only targets still without an answer are retried, so a matrix where everything is dropped ends one
  timeout after it started, not after (retries + 1) timeouts.
Needs CAP_NET_RAW (raw sockets), nothing else.
"""

from __future__ import annotations

import errno
import resource
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netpolcheck.probe import packets
from netpolcheck.probe.errors import BadInput
from netpolcheck.probe.targets import Target

ATTEMPT_UNITS = {"TCP": "SYN", "UDP": "datagram", "SCTP": "INIT"}
RAW_RECEIVE_BUFFER = 4 * 1024 * 1024
SO_TIMESTAMPNS = 35  # Linux; the kernel stamps each datagram on arrival, so rtt_ms excludes our own latency
TIMESPEC = struct.Struct("@qq")


@dataclass
class Attempt:
    number: int
    sport: int
    token: int  # TCP initial sequence number, SCTP initiate tag, UDP nonce
    sent_at: float  # Unix time, taken just before the packet was handed to the kernel
    sock: socket.socket | None = None  # the kernel socket holding the source port (TCP, UDP)


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

    def answer(self, verdict: str, evidence: str, attempt: Attempt, now: float) -> None:
        """Record the first answer; `now` is its arrival (Unix time)."""
        if self.verdict is not None:
            return
        self.verdict = verdict
        self.evidence = evidence
        self.answered_by = attempt.number
        self.rtt_ms = round(max(0.0, now - attempt.sent_at) * 1000.0, 3)

    def result(self, window_end: float) -> dict[str, object]:
        """The result line; `window_end` (Unix time) is when the prober stopped listening."""
        if self.verdict is None:
            window = window_end - self.attempts[0].sent_at if self.attempts else 0.0
            unit = ATTEMPT_UNITS[self.target.protocol]
            count = len(self.attempts)
            plural = "" if count == 1 else "s"
            evidence = f"no answer to {count} {unit}{plural} in {window:.1f} s"
            notes = list(self.notes)
            if self.foreign_answers:
                notes.append(f"{self.foreign_answers} UDP answers did not echo the probe's nonce")
            if notes:
                evidence += f" ({'; '.join(notes)})"
            verdict, attempts, rtt = "dropped", count, None
        else:
            verdict, evidence, rtt = self.verdict, self.evidence, self.rtt_ms
            attempts = len(self.attempts) if self.answered_by is None else self.answered_by + 1
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


def arrival_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            seconds, nanoseconds = TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9
    return time.time()


def raise_open_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


class Prober:
    """One run over a target list; `run()` returns one result dict per target, in input order."""

    def __init__(self, targets: list[Target], timeout: float, retries: int) -> None:
        self.states = [ProbeState(t) for t in targets]
        self.timeout = timeout
        self.retries = retries
        self.sender = open_raw_socket(socket.IPPROTO_RAW)
        self.receivers = {
            proto: open_raw_socket(proto)
            for proto in (socket.IPPROTO_TCP, socket.IPPROTO_ICMP, packets.IPPROTO_SCTP)
        }
        for sock in self.receivers.values():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RAW_RECEIVE_BUFFER)
        self.selector = selectors.DefaultSelector()
        for proto, sock in self.receivers.items():
            self.selector.register(sock, selectors.EVENT_READ, proto)
        # (protocol number, target ip, target port, source port) -> the state and attempt it belongs to
        self.flows: dict[tuple[int, str, int, int], tuple[ProbeState, Attempt]] = {}
        self.source_addresses: dict[str, str | OSError] = {}
        self.sctp_ports: set[int] = set()
        self.owned_sockets: list[socket.socket] = []
        self.syn_templates: dict[tuple[str, str, int], packets.SynTemplate] = {}
        self.icmp_errors_from_target: dict[str, int] = {}  # target ip -> ICMP errors matched to its probes
        raise_open_file_limit(64 + len(targets) * (retries + 1))

    def close(self) -> None:
        self.selector.close()
        for sock in [self.sender, *self.receivers.values(), *self.owned_sockets]:
            sock.close()

    def run(self) -> list[dict[str, object]]:
        try:
            self.prepare()
            start = time.monotonic()
            interval = self.timeout / (self.retries + 1)
            last_round_sent = start
            for number in range(self.retries + 1):
                self.receive_until(start + number * interval)
                pending = [s for s in self.states if s.verdict is None]
                if not pending:
                    break
                for state in pending:
                    self.send_attempt(state, number)
                last_round_sent = time.monotonic()
            # the window is the timeout, but never shorter than one interval after the last attempt went out
            # (on a loaded machine sending a round can take a while; late sends must not lose their answers)
            deadline = max(start + self.timeout, last_round_sent + interval)
            self.receive_until(deadline)
            self.note_icmp_rate_limit()
            window_end = time.time()
            return [s.result(window_end) for s in self.states]
        finally:
            self.close()

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
        """Pay scapy's import and first build before the clock starts, not inside the first window."""
        if any(s.target.protocol in ("TCP", "SCTP") for s in self.states):
            packets.tcp_syn("127.0.0.1", "127.0.0.1", 1, 1, 0)
        if any(s.target.protocol == "SCTP" for s in self.states):
            packets.sctp_init("127.0.0.1", "127.0.0.1", 1, 1, 1)

    # sending ---------------------------------------------------------------------------------------

    def source_for(self, ip: str) -> str | OSError:
        """The address this pod's routing picks to reach `ip` (no packet is sent to find it)."""
        if ip not in self.source_addresses:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                try:
                    sock.connect((ip, 9))
                    self.source_addresses[ip] = sock.getsockname()[0]
                except OSError as exc:
                    self.source_addresses[ip] = exc
        return self.source_addresses[ip]

    def send_attempt(self, state: ProbeState, number: int) -> None:
        target = state.target
        source = self.source_for(target.ip)
        now = time.time()
        if isinstance(source, OSError):
            attempt = Attempt(number, 0, 0, now)
            state.attempts.append(attempt)
            reason = source.strerror or str(source)
            state.answer("rejected", f"no route to {target.ip} from this pod ({reason})", attempt, now)
            return
        token = secrets.randbits(32)
        if target.protocol == "UDP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", 0))
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self.owned_sockets.append(sock)
            attempt = Attempt(number, sock.getsockname()[1], token, now, sock)
            self.flows[(packets.IPPROTO_UDP, target.ip, target.port, attempt.sport)] = (state, attempt)
            self.selector.register(sock, selectors.EVENT_READ, (state, attempt))
            state.attempts.append(attempt)
            self.transmit(state, lambda: sock.sendto(udp_payload(token), (target.ip, target.port)))
            return
        if target.protocol == "TCP":
            holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            holder.bind((source, 0))
            self.owned_sockets.append(holder)
            attempt = Attempt(number, holder.getsockname()[1], token, now, holder)
            wire = self.syn_template(source, target).stamp(attempt.sport, token)
        else:
            sport = self.fresh_sctp_port()
            attempt = Attempt(number, sport, token or 1, now)
            wire = packets.sctp_init(source, target.ip, sport, target.port, attempt.token)
        protocol = packets.PROTOCOL_NUMBERS[target.protocol]
        self.flows[(protocol, target.ip, target.port, attempt.sport)] = (state, attempt)
        state.attempts.append(attempt)
        self.transmit(state, lambda: self.sender.sendto(wire, (target.ip, 0)))

    def transmit(self, state: ProbeState, send: Callable[[], object]) -> None:
        try:
            sent_at = time.time()
            send()
            state.attempts[-1].sent_at = sent_at
        except OSError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                attempt = state.attempts[-1]
                evidence = f"no route to {state.target.ip} from this pod"
                state.answer("rejected", evidence, attempt, time.time())
            elif exc.errno == errno.EPERM:
                note = "sending was refused by a filter in this pod (EPERM)"
                if note not in state.notes:
                    state.notes.append(note)
            # anything else (ENOBUFS, ...) counts as a lost attempt: the next attempt retries it

    def syn_template(self, source: str, target: Target) -> packets.SynTemplate:
        key = (source, target.ip, target.port)
        if key not in self.syn_templates:
            self.syn_templates[key] = packets.SynTemplate(source, target.ip, target.port)
        return self.syn_templates[key]

    def fresh_sctp_port(self) -> int:
        while True:
            port = 32768 + secrets.randbelow(61000 - 32768)
            if port not in self.sctp_ports:
                self.sctp_ports.add(port)
                return port

    # receiving -------------------------------------------------------------------------------------

    def receive_until(self, until: float) -> None:
        """Read answers until `until` (monotonic); always reads what is already queued, even when late."""
        while not all(s.verdict is not None for s in self.states):
            remaining = max(0.0, until - time.monotonic())
            for key, _ in self.selector.select(remaining):
                self.drain(key)
            if remaining == 0.0:
                return

    def drain(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        while True:
            try:
                data, ancillary, _, peer = sock.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. a UDP socket reporting an ICMP error: the raw ICMP socket has it too
            now = arrival_time(ancillary)
            if key.data == socket.IPPROTO_TCP:
                self.on_tcp(data, now)
            elif key.data == socket.IPPROTO_ICMP:
                self.on_icmp(data, now)
            elif key.data == packets.IPPROTO_SCTP:
                self.on_sctp(data, now)
            else:
                state, attempt = key.data
                self.on_udp(state, attempt, data, peer, now)

    def on_tcp(self, datagram: bytes, now: float) -> None:
        ports = packets.ports_of(datagram)
        if ports is None:
            return
        flow = self.flows.get((packets.IPPROTO_TCP, ports[0], ports[1], ports[2]))
        if flow is None:
            return
        state, attempt = flow
        answer = packets.parse_tcp_answer(datagram)
        if answer is None or answer.ack != (attempt.token + 1) % 2**32:
            return
        where = f"{answer.src}:{answer.sport}"
        if "S" in answer.flags and "A" in answer.flags:
            state.answer("allowed", f"SYN-ACK from {where}", attempt, now)
        elif "R" in answer.flags:
            state.answer("refused", f"RST from {where}", attempt, now)

    def on_sctp(self, datagram: bytes, now: float) -> None:
        answer = packets.parse_sctp_answer(datagram)
        if answer is None:
            return
        flow = self.flows.get((packets.IPPROTO_SCTP, answer.src, answer.sport, answer.dport))
        if flow is None:
            return
        state, attempt = flow
        where = f"{answer.src}:{answer.sport}"
        if answer.chunk_type == 2 and answer.tag == attempt.token:
            state.answer("allowed", f"INIT-ACK from {where}", attempt, now)
        elif answer.chunk_type == 6:
            state.answer("refused", f"ABORT from {where}", attempt, now)

    def on_udp(
        self, state: ProbeState, attempt: Attempt, data: bytes, peer: tuple[str, int], now: float
    ) -> None:
        target = state.target
        if peer == (target.ip, target.port) and data == udp_payload(attempt.token):
            state.answer("allowed", f"UDP echo from {target.ip}:{target.port}", attempt, now)
        else:
            state.foreign_answers += 1

    def on_icmp(self, datagram: bytes, now: float) -> None:
        ports = packets.ports_of(datagram)
        if ports is None:
            return
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
        state.answer(verdict, evidence, attempt, now)


def probe_targets(targets: list[Target], timeout: float, retries: int) -> list[dict[str, object]]:
    # an empty list still opens the raw sockets, so a missing privilege shows up at once
    return Prober(targets, timeout, retries).run()
