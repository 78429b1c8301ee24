"""`serve`: TCP and UDP echo listeners (SCTP where the kernel has it) that journal what arrived.

One thread, one selector. TCP connections are accepted and echoed (that is what `hold` talks to), UDP
datagrams are echoed to their sender (that is what a UDP probe waits for). A raw TCP socket, when
NET_RAW is available, journals each SYN to a served port, so a dropped handshake can still be shown to
have reached the pod.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from netpolcheck.probe import packets
from netpolcheck.probe.agent import Agent
from netpolcheck.probe.errors import BadInput, shown_path
from netpolcheck.probe.hold import write_json_atomically
from netpolcheck.probe.journal import JournalWriter

BACKLOG = 4096


@dataclass(frozen=True)
class Listener:
    proto: str  # "tcp", "udp", "sctp", "syn-watch"
    port: int


def peer_text(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


def bind_socket(kind: int, proto: int, port: int, label: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("0.0.0.0", port))
    except PermissionError:
        sock.close()
        raise BadInput(
            f"cannot listen on {label} port {port}: ports below 1024 need root or NET_BIND_SERVICE"
        ) from None
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {label} port {port}: {exc.strerror}") from None
    return sock


class Server:
    def __init__(self, tcp: list[int], udp: list[int], sctp: list[int]) -> None:
        self.journal: JournalWriter  # set once every listener is up (a failed start leaves no journal)
        self.selector = selectors.DefaultSelector()
        self.tcp_ports = set(tcp)
        self.sctp_unavailable: str | None = None
        self.syn_watch_unavailable: str | None = None
        self.stopping = False
        try:
            for port in tcp:
                self.listen_stream(socket.IPPROTO_TCP, port, "tcp")
            for port in udp:
                sock = bind_socket(socket.SOCK_DGRAM, socket.IPPROTO_UDP, port, "UDP")
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, Listener("udp", port))
            if sctp:
                self.listen_sctp(sctp)
            if tcp:
                self.watch_syns()
        except BaseException:
            self.close()
            raise

    def listen_stream(self, proto: int, port: int, label: str) -> None:
        sock = bind_socket(socket.SOCK_STREAM, proto, port, label.upper())
        sock.listen(BACKLOG)
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, Listener(label, port))

    def listen_sctp(self, ports: list[int]) -> None:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM, packets.IPPROTO_SCTP).close()
        except OSError as exc:
            self.sctp_unavailable = (
                f"SCTP is not available in this kernel (socket(IPPROTO_SCTP): {exc.strerror}); "
                f"not listening on SCTP {','.join(map(str, ports))}"
            )
            return
        for port in ports:
            self.listen_stream(packets.IPPROTO_SCTP, port, "sctp")

    def watch_syns(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        except PermissionError:
            self.syn_watch_unavailable = "no NET_RAW: SYNs are not journalled, only accepted connections"
            return
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, Listener("syn-watch", 0))

    def status(self) -> dict[str, object]:
        listening: dict[str, list[int]] = {}
        for key in self.selector.get_map().values():
            listener = key.data
            if isinstance(listener, Listener) and listener.proto in ("tcp", "udp", "sctp"):
                listening.setdefault(listener.proto, []).append(listener.port)
        return {
            "listening": {proto: sorted(ports) for proto, ports in listening.items()},
            "sctp_unavailable": self.sctp_unavailable,
            "syn_journal": self.syn_watch_unavailable is None and bool(self.tcp_ports),
        }

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()

    def serve_forever(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(0.5):
                self.handle(key)

    def handle(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        listener = key.data
        if isinstance(listener, Listener) and listener.proto == "udp":
            self.echo_datagrams(sock, listener.port)
        elif isinstance(listener, Listener) and listener.proto == "syn-watch":
            self.journal_syns(sock)
        elif isinstance(listener, Listener):
            self.accept(sock, listener)
        else:
            self.echo_stream(sock, listener)

    def accept(self, sock: socket.socket, listener: Listener) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self.journal.record(
                "accept", proto=listener.proto, port=listener.port, peer=peer_text(peer), bytes=0
            )
            self.selector.register(conn, selectors.EVENT_READ, (listener, peer_text(peer)))

    def echo_stream(self, conn: socket.socket, data: tuple[Listener, str]) -> None:
        listener, peer = data
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            chunk = b""
            self.journal.record(
                "error", proto=listener.proto, port=listener.port, peer=peer, error=exc.strerror
            )
        if chunk:
            self.journal.record("data", proto=listener.proto, port=listener.port, peer=peer, bytes=len(chunk))
            with contextlib.suppress(OSError):  # the next recv reports how the connection ended
                conn.sendall(chunk)
            return
        self.journal.record("close", proto=listener.proto, port=listener.port, peer=peer, bytes=0)
        self.selector.unregister(conn)
        conn.close()

    def echo_datagrams(self, sock: socket.socket, port: int) -> None:
        while True:
            try:
                payload, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error for an earlier echo; keep serving
            self.journal.record("datagram", proto="udp", port=port, peer=peer_text(peer), bytes=len(payload))
            with contextlib.suppress(OSError):
                sock.sendto(payload, peer)

    def journal_syns(self, sock: socket.socket) -> None:
        while True:
            try:
                datagram = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            header_length = (datagram[0] & 0x0F) * 4
            if len(datagram) < header_length + 14:
                continue
            ports = packets.ports_of(datagram)
            flags = datagram[header_length + 13]
            if ports is None or ports[2] not in self.tcp_ports or flags & 0x12 != 0x02:  # SYN without ACK
                continue
            self.journal.record("syn", proto="tcp", port=ports[2], peer=f"{ports[0]}:{ports[1]}", bytes=0)


def run_serve(tcp: list[int], udp: list[int], sctp: list[int], journal_path: str) -> int:
    if not (tcp or udp or sctp):
        raise BadInput("serve needs at least one of --tcp, --udp, --sctp")
    server = Server(tcp, udp, sctp)
    try:
        journal = server.journal = JournalWriter(journal_path)
    except OSError as exc:
        server.close()
        raise BadInput(f"cannot write the journal {shown_path(journal_path)}: {exc.strerror}") from None
    except BadInput:
        server.close()
        raise

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent, agent_unavailable = start_agent(journal_path)
    status = {**server.status(), "agent": agent and agent.path, "agent_unavailable": agent_unavailable}
    for warning in (server.sctp_unavailable, server.syn_watch_unavailable, agent_unavailable):
        if warning:
            print(f"netpolcheck.probe serve: {warning}", file=sys.stderr, flush=True)
    journal.record("listening", **status)
    ready_file = ready_path(journal_path)
    write_json_atomically(ready_file, {"pid": os.getpid(), **status})
    print("READY", flush=True)
    try:
        server.serve_forever()
    finally:
        if agent is not None:
            agent.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ready_file)
        server.close()
        journal.record("stopped")
        journal.close()
    return 0


def start_agent(journal_path: str) -> tuple[Agent | None, str | None]:
    """The resident agent beside this serve, or why there is none (serve runs on without it: `ask` then
    falls back to one-shot probes and says so)."""
    try:
        agent = Agent(journal_path)
    except (BadInput, OSError) as exc:
        reason = str(exc) if isinstance(exc, BadInput) else exc.strerror or str(exc)
        return None, f"no resident agent: {reason}"
    agent.start()
    return agent, None


def ready_path(journal_path: str) -> str:
    """Where serve says it is ready (removed when it stops): next to its journal."""
    return f"{journal_path}.ready"


def is_ready(journal_path: str) -> bool:
    """True while the serve that owns `journal_path` is up: its ready file exists and its PID is alive."""
    try:
        with open(ready_path(journal_path), encoding="utf-8") as stream:
            pid = int(json.load(stream)["pid"])
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return False
    return b"netpolcheck.probe" in argv and b"serve" in argv
