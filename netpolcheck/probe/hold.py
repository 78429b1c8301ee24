"""`hold`: keep a real TCP connection (and a UDP flow) to a `serve` target busy and record every gap.

Every `interval` one numbered line goes down the TCP connection and one numbered datagram goes to the
UDP port; `serve` echoes both. A tick whose echo is not back within `late_after` seconds is lost; a run
of consecutive lost ticks is a gap (start = when its first tick was sent, end = when the next echo of
that flow came back, `lost` = how many ticks). TCP retransmits, so its gap ends when the path is back;
UDP echoes of lost ticks never come back. The status file is rewritten (atomically) every tick, so a
test can read it while `hold` runs in the background; SIGTERM ends it with a final report.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import selectors
import signal
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from netpolcheck.probe.errors import BadInput, shown, shown_path
from netpolcheck.probe.inputs import load_json, read_input


@dataclass
class Gap:
    start: float
    end: float | None = None
    lost: int = 0


@dataclass
class FlowLog:
    """Per-flow bookkeeping: ticks in flight, echoes, gaps."""

    wall_offset: float  # add to a monotonic time to get Unix time
    sent: int = 0
    echoed: int = 0
    lost: int = 0
    last_echo: float | None = None
    gaps: list[Gap] = field(default_factory=list)
    in_flight: dict[int, float] = field(default_factory=dict)  # tick -> monotonic send time
    open_gap: Gap | None = None

    def on_send(self, tick: int, now: float) -> None:
        self.sent += 1
        self.in_flight[tick] = now

    def on_echo(self, tick: int, wall: float) -> None:
        # ticks sent before this one and still without an echo were lost in the same outage
        for older in sorted(t for t in self.in_flight if t < tick):
            self.mark_lost(older)
        self.echoed += 1
        self.last_echo = wall
        self.in_flight.pop(tick, None)
        if self.open_gap is not None:
            self.open_gap.end = wall
            self.open_gap = None

    def mark_lost(self, tick: int) -> None:
        sent_at = self.in_flight.pop(tick)
        self.lost += 1
        if self.open_gap is None:
            self.open_gap = Gap(start=round(sent_at + self.wall_offset, 6))
            self.gaps.append(self.open_gap)
        self.open_gap.lost += 1

    def expire(self, now: float, late_after: float) -> None:
        """Count the ticks still without an echo `late_after` seconds after they were sent as lost."""
        for tick, sent_at in sorted(self.in_flight.items()):
            if now - sent_at < late_after:
                break
            self.mark_lost(tick)

    def report(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "echoed": self.echoed,
            "lost": self.lost,
            "last_echo": self.last_echo,
            "gaps": [asdict(g) for g in self.gaps],
            "in_gap": self.open_gap is not None,
        }


class Holder:
    def __init__(
        self,
        ip: str,
        port: int,
        udp_port: int | None,
        interval: float,
        late_after: float,
        status_path: str,
        connect_timeout: float,
    ) -> None:
        self.ip, self.port, self.udp_port = ip, port, udp_port
        self.interval, self.late_after = interval, late_after
        self.status_path = status_path
        self.connect_timeout = connect_timeout
        self.started = time.time()
        self.wall_offset = time.time() - time.monotonic()
        names = ["tcp"] + (["udp"] if udp_port is not None else [])
        self.flows = {name: FlowLog(self.wall_offset) for name in names}
        self.ended: dict[str, Any] | None = None
        self.stop_requested = False
        self.nonce = secrets.token_hex(4)
        self.tcp_buffer = b""

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "target": {"ip": self.ip, "tcp_port": self.port, "udp_port": self.udp_port},
            "interval": self.interval,
            "late_after": self.late_after,
            "started": round(self.started, 6),
            "updated": round(time.time(), 6),
            "state": "running" if self.ended is None else "ended",
            "flows": {name: flow.report() for name, flow in self.flows.items()},
            "ended": self.ended,
        }

    def write_status(self) -> None:
        write_json_atomically(self.status_path, self.status())

    def finish(self, how: str) -> None:
        if self.ended is None:
            self.ended = {"at": round(time.time(), 6), "how": how}

    def run(self, duration: float | None) -> int:
        try:
            tcp = socket.create_connection((self.ip, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            self.finish(f"TCP connect to {self.ip}:{self.port} failed: {exc.strerror or exc}")
            self.write_status()
            return 1
        tcp.setblocking(False)
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        udp = None
        selector = selectors.DefaultSelector()
        selector.register(tcp, selectors.EVENT_READ, "tcp")
        if self.udp_port is not None:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.connect((self.ip, self.udp_port))
            udp.setblocking(False)
            selector.register(udp, selectors.EVENT_READ, "udp")
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        start = time.monotonic()
        tick = 0
        try:
            while self.ended is None:
                now = time.monotonic()
                if self.stop_requested:
                    self.finish("stopped")
                    break
                if duration is not None and now - start >= duration:
                    self.finish("duration reached")
                    break
                self.send_tick(tcp, udp, tick, now)
                tick += 1
                next_tick = start + tick * self.interval
                while self.ended is None and not self.stop_requested:
                    remaining = next_tick - time.monotonic()
                    if remaining <= 0:
                        break
                    for key, _ in selector.select(remaining):
                        self.read(key)
                now = time.monotonic()
                for flow in self.flows.values():
                    flow.expire(now, self.late_after)
                self.write_status()
        finally:
            selector.close()
            tcp.close()
            if udp is not None:
                udp.close()
            self.finish("stopped")
            self.write_status()
        return 0

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True

    def send_tick(self, tcp: socket.socket, udp: socket.socket | None, tick: int, now: float) -> None:
        try:
            tcp.send(b"%d\n" % tick)
            self.flows["tcp"].on_send(tick, now)
        except BlockingIOError:
            self.flows["tcp"].on_send(tick, now)  # the send buffer is full: the path is stalled
        except OSError as exc:
            self.finish(f"TCP connection ended: {exc.strerror or exc}")
            return
        if udp is not None:
            self.flows["udp"].on_send(tick, now)
            # an error here is an ICMP error for an earlier datagram, or a local filter: the tick is lost
            with contextlib.suppress(OSError):
                udp.send(f"hold {self.nonce} {tick}".encode())

    def read(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        wall = round(time.time(), 6)
        # ticks already overdue belong to the gap this echo may be about to close, not to a new one
        self.flows[key.data].expire(time.monotonic(), self.late_after)
        if key.data == "udp":
            while True:
                try:
                    data = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    continue
                parts = data.decode(errors="replace").split()
                if len(parts) == 3 and parts[:2] == ["hold", self.nonce] and parts[2].isdigit():
                    self.flows["udp"].on_echo(int(parts[2]), wall)
            return
        try:
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.finish(f"TCP connection ended: {exc.strerror or exc}")
            return
        if not chunk:
            self.finish("TCP connection closed by the peer")
            return
        self.tcp_buffer += chunk
        *lines, self.tcp_buffer = self.tcp_buffer.split(b"\n")
        for line in lines:
            if line.isdigit():
                self.flows["tcp"].on_echo(int(line), wall)


def write_json_atomically(path: str, document: dict[str, Any]) -> None:
    """Replace `path` with `document`, never writing through a link someone planted.

    The temporary file is created like mkstemp (random name, O_CREAT | O_EXCL, mode 0600) next to `path`,
    then renamed over it: a rename replaces a symbolic link at `path` instead of following it.
    """
    directory, name = os.path.split(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream, sort_keys=True)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def read_status(path: str) -> dict[str, Any]:
    """A hold status file; anything that is not one (not JSON, not an object, a bad pid) is BadInput."""
    text = read_input(path, "hold status", missing=f"no hold status at {shown_path(path)}")
    document = load_json(text, f"hold status {shown_path(path)}")
    if not isinstance(document, dict):
        raise BadInput(f"{shown_path(path)} is not a hold status file (not a JSON object)")
    pid = document.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**22:
        raise BadInput(f"{shown_path(path)} is not a hold status file (pid {shown(pid)} is not a process id)")
    if document.get("state") not in ("running", "ended"):
        raise BadInput(f"{shown_path(path)} is not a hold status file (state {shown(document.get('state'))})")
    return document


def is_our_hold(pid: int) -> bool:
    """True when `pid` is a running `netpolcheck.probe hold` (so we never signal an unrelated process)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"netpolcheck.probe" in argv and b"hold" in argv


def wait_for_status(path: str, timeout: float, ready: str) -> dict[str, Any] | None:
    """Poll the status file until its state is `ready` (or it ended); None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            try:
                status = read_status(path)
            except BadInput:
                status = None
            if status is not None and status.get("state") in (ready, "ended"):
                return status
        time.sleep(0.02)
    return None


def stop_hold(path: str, timeout: float) -> dict[str, Any]:
    status = read_status(path)
    pid = int(status["pid"])
    if status["state"] == "ended" or not is_our_hold(pid):
        return status
    os.kill(pid, signal.SIGTERM)
    final = wait_for_status(path, timeout, ready="ended")
    if final is None:
        raise BadInput(f"hold (pid {pid}) did not end within {timeout} s of SIGTERM")
    return final
