"""The resident agent: `serve` answers probe requests on a private Unix socket, with scapy already loaded.

Why a Unix socket: a TCP control port on the pod IP would be subject to the very policies under test and
reachable by other pods; a socket file in a 0700 directory (the socket itself 0600), whose peer must be
this user (SO_PEERCRED), is reachable only from inside the pod, by `kubectl exec ... ask`.

One request per connection: the client writes one JSON object and shuts its side down, the agent answers
one JSON object and closes. Requests are validated as the CLI validates its input (targets.py), at most
MAX_REQUEST_BYTES, at most MAX_CONCURRENT at a time (more are told "busy" at once), and a client has
READ_SECONDS to send its request. Operations (docs/probe.md, "The resident agent"):

- `probe`: a one-shot run (`targets`, `timeout`, `retries`), the same results as `probe` prints;
- `watch`: start staggered attempts toward `targets` (`timeout` per attempt, `interval`, or a target's own
  `interval`, `limit`) in the background; answers the watch id at once;
- `settle`: wait until each target (`want`: the verdicts that count) shows a wanted verdict, at most
  `deadline` seconds; targets of the named `watch` continue its timeline, the others start now; with
  `confirm_timeout`, every target is then probed once more as `probe` does (`confirm`), in the same
  request, so the caller needs no exec of its own to confirm;
- `stop`: stop a watch;
- `timeline`: stop a watch and answer every target's attempts as runs of one verdict (how a long step,
  a Weave rollout, changed each cell, to the watch's interval).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from netpolcheck.probe.ask import read_object, socket_path
from netpolcheck.probe.errors import BadInput, shown, shown_path
from netpolcheck.probe.staggered import DEFAULT_INTERVAL, DEFAULT_SILENCE, Watch
from netpolcheck.probe.targets import Target, targets_from

MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_CONCURRENT = 8
MAX_WATCHES = 16
READ_SECONDS = 10.0
BEGIN_SECONDS = 30.0  # a watch request waits at most this long for the first attempts to go out
VERDICTS = ("allowed", "refused", "rejected", "dropped")
OPERATIONS = ("probe", "watch", "settle", "stop", "timeline")
ENDING_SECONDS = 10.0  # `timeline` waits at most this long for the stopped watch loop to end
PEERCRED = struct.Struct("3i")  # pid, uid, gid


def private_socket_directory(path: str) -> None:
    """Create `path` 0700, or accept it only if it is a real directory of ours with no access for others."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise BadInput(f"{shown_path(path)} is not a 0700 directory of this user; no resident agent")


def _number(request: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise BadInput(f"{key} must be a number in ({low:g}, {high:g}], got {shown(value)}")
    return float(value)


def _intervals(items: list[Any], default: float) -> list[float]:
    """Each target's own `interval` (seconds between two of its attempts), else `default`."""
    intervals = []
    for index, item in enumerate(items):
        try:
            intervals.append(_number(item, "interval", default, 0.0009, 1))
        except BadInput as exc:
            raise BadInput(f"target {index}: {exc}") from None
    return intervals


def _wants(items: list[Any]) -> list[frozenset[str]]:
    wants = []
    for index, item in enumerate(items):
        want = item.get("want")
        if not isinstance(want, list) or not want or any(v not in VERDICTS for v in want):
            raise BadInput(f"target {index}: want must be a non-empty list of {', '.join(VERDICTS)}")
        wants.append(frozenset(want))
    return wants


class Agent:
    """The socket, its accept thread, and the watches it runs."""

    def __init__(self, journal_path: str) -> None:
        self.path = socket_path(journal_path)
        private_socket_directory(os.path.dirname(self.path))
        with contextlib.suppress(FileNotFoundError):
            info = os.lstat(self.path)
            if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
                raise BadInput(f"{shown_path(self.path)} exists and is not our socket; no resident agent")
            os.unlink(self.path)  # a socket a previous serve left behind
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)  # the socket file is created 0600 (serve is single-threaded here)
        try:
            self.listener.bind(self.path)
        finally:
            os.umask(previous)
        self.listener.listen(64)
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self.watches: dict[str, Watch] = {}
        self.lock = threading.Lock()
        self.closed = False

    def start(self) -> None:
        threading.Thread(target=self.accept_loop, name="agent-accept", daemon=True).start()
        threading.Thread(target=warm_up, name="agent-warm-up", daemon=True).start()

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with self.lock:
            for watch in self.watches.values():
                watch.stop()

    def accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                if self.closed:
                    return
                continue
            if not self.slots.acquire(blocking=False):
                with contextlib.suppress(OSError), conn:
                    conn.sendall(
                        json.dumps({"error": f"busy: {MAX_CONCURRENT} requests already running"}).encode()
                    )
                continue
            threading.Thread(target=self.serve_one, args=(conn,), daemon=True).start()

    def serve_one(self, conn: socket.socket) -> None:
        received = time.time()
        try:
            with conn:
                try:
                    reply = self.answer(read_request(conn), received)
                except BadInput as exc:
                    reply = {"error": str(exc)}
                except Exception as exc:  # a bug must not kill the agent; the client gets one line
                    reply = {"error": f"the agent failed: {type(exc).__name__}: {shown(str(exc), 200)}"}
                reply.setdefault("received_at", round(received, 6))
                reply["answered_at"] = round(time.time(), 6)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode())
        finally:
            self.slots.release()

    def answer(self, request: dict[str, Any], received: float) -> dict[str, Any]:
        operation = request.get("op")
        if operation not in OPERATIONS:
            raise BadInput(f"op must be one of {', '.join(OPERATIONS)}, got {shown(operation)}")
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "probe": self.probe,
            "watch": self.watch,
            "settle": self.settle,
            "stop": self.stop,
            "timeline": self.timeline,
        }
        reply = handlers[operation](request)
        return {"agent": "resident", **reply}

    def probe(self, request: dict[str, Any]) -> dict[str, Any]:
        targets = targets_from(request.get("targets"))
        timeout = _number(request, "timeout", 1.0, 0, 3600)
        results, failure = _probe_once(targets, timeout, _retries(request))
        return {"results": results, "failure": failure}

    def _start_watch(
        self, targets: list[Target], items: list[Any], request: dict[str, Any]
    ) -> tuple[str, Watch]:
        """A watch over `targets` (`items`: their request objects, which may carry an `interval`)."""
        timeout = _number(request, "timeout", 0.1, 0, 60)
        interval = _number(request, "interval", DEFAULT_INTERVAL, 0.0009, 1)
        limit = _number(request, "limit", 60.0, 0, 600)
        silence = _number(request, "silence", DEFAULT_SILENCE, 0, 60)
        intervals = _intervals(items, interval)
        with self.lock:
            self.watches = {k: w for k, w in self.watches.items() if not w.stopping}
            if len(self.watches) >= MAX_WATCHES:
                raise BadInput(f"busy: {MAX_WATCHES} watches already running")
            watch = Watch(targets, timeout, interval, limit, silence, intervals)
            key = secrets.token_hex(8)
            self.watches[key] = watch
        threading.Thread(target=watch.run_watch, name=f"watch-{key}", daemon=True).start()
        return key, watch

    def watch(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answers once the first attempts are out, so what the caller does next happens during the watch."""
        items = request.get("targets")
        targets = targets_from(items)
        assert isinstance(items, list)
        key, watch = self._start_watch(targets, items, request)
        watch.begun.wait(BEGIN_SECONDS)
        return {"watch": key, "started_at": watch.started_at, "failure": watch.failure}

    def settle(self, request: dict[str, Any]) -> dict[str, Any]:
        items = request.get("targets")
        targets = targets_from(items)
        assert isinstance(items, list)
        wants = _wants(items)
        _intervals(items, DEFAULT_INTERVAL)  # every target's, also those an existing watch continues
        deadline = time.monotonic() + _number(request, "deadline", 15.0, 0, 600)
        confirm = request.get("confirm_timeout")
        if confirm is not None:  # checked before any watch starts: nothing half-done on bad input
            confirm = _number(request, "confirm_timeout", 1.0, 0, 3600)
            retries = _retries(request)
        key = request.get("watch")
        with self.lock:  # `watch`: one id, or several separated by commas (a target is read from the first)
            named = [self.watches.get(k) for k in key.split(",")] if isinstance(key, str) else []
        existing = [w for w in named if w is not None and not w.stopping]
        wheres = [(w, w.indexes()) for w in existing]
        found = [
            next(
                (
                    (w, where[t.ip, t.port, t.protocol])
                    for w, where in wheres
                    if (t.ip, t.port, t.protocol) in where
                ),
                None,
            )
            for t in targets
        ]
        rest = [position for position, place in enumerate(found) if place is None]
        fresh = (
            self._start_watch([targets[p] for p in rest], [items[p] for p in rest], request)[1]
            if rest
            else None
        )
        placed: list[tuple[Watch, int]] = []
        for position, place in enumerate(found):
            if place is None:
                assert fresh is not None
                place = (fresh, rest.index(position))
            placed.append(place)
        used = [w for w in [*existing, fresh] if w is not None and any(p[0] is w for p in placed)]
        for watch in used:
            watch.settle({i: wants[pos] for pos, (w, i) in enumerate(placed) if w is watch}, deadline)
        for watch in [*existing, *used]:
            watch.stop()
        results = [watch.report(index, targets[pos].id) for pos, (watch, index) in enumerate(placed)]
        failures = [w.failure for w in used if w.failure]
        answer: dict[str, Any] = {
            "results": results,
            "failure": "; ".join(failures) or None,
            "continued": len(targets) - len(rest),
        }
        if confirm is not None:  # the watches have stopped: these attempts are the only ones out
            answer["confirm"], answer["confirm_failure"] = _probe_once(targets, confirm, retries)
        return answer

    def stop(self, request: dict[str, Any]) -> dict[str, Any]:
        key = request.get("watch")
        with self.lock:  # one id, or several separated by commas
            stopped = [self.watches.pop(k, None) for k in key.split(",")] if isinstance(key, str) else []
        for watch in stopped:
            if watch is not None:
                watch.stop()
        return {"stopped": any(w is not None for w in stopped)}

    def timeline(self, request: dict[str, Any]) -> dict[str, Any]:
        """Stop the named watch and answer what every target showed, attempt by attempt, as runs of one
        verdict (Watch.timeline): what a long step (a Weave rollout) did to each cell, to an interval."""
        key = request.get("watch")
        if not isinstance(key, str):
            raise BadInput(f"timeline needs the id a watch request answered, got {shown(key)}")
        with self.lock:
            watch = self.watches.pop(key, None)
        if watch is None:
            raise BadInput(f"no watch {shown(key)} (never started, or already stopped)")
        watch.stop()
        ended = watch.wait_ended(ENDING_SECONDS)
        failure = watch.failure or (None if ended else f"the watch did not end within {ENDING_SECONDS:g} s")
        return {
            "watch": key,
            "started_at": watch.started_at,
            "ended_at": watch.ended_at,
            "failure": failure,
            "targets": [watch.timeline(index) for index in range(len(watch.states))],
        }


def _retries(request: dict[str, Any]) -> int:
    retries = request.get("retries", 7)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise BadInput(f"retries must be an integer in 0-100, got {shown(retries)}")
    return retries


def _probe_once(
    targets: list[Target], timeout: float, retries: int
) -> tuple[list[dict[str, object]], str | None]:
    """A one-shot run over `targets`, as the `probe` op (and the CLI's `probe`) runs it."""
    from netpolcheck.probe.engine import StopSignals, probe_targets

    return probe_targets(targets, timeout, retries, StopSignals())


def read_request(conn: socket.socket) -> dict[str, Any]:
    """The request on `conn`: from this user only, complete within READ_SECONDS, at most the cap."""
    uid = PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))[1]
    if uid != os.geteuid():
        raise BadInput(f"requests are accepted from uid {os.geteuid()} only, not {uid}")
    return read_object(conn, MAX_REQUEST_BYTES, READ_SECONDS, "request")


def warm_up() -> None:
    """Import scapy and build a SYN once, so the first request pays nothing for it."""
    with contextlib.suppress(Exception):
        from netpolcheck.probe import packets

        packets.SynTemplate()
