"""Stand-ins for the busybox applets the tutorials use that a machine may lack: `wget` and `nc`.

The kubelet writes one small executable per applet (`write_applets`) into a private directory and puts
it first on a busybox container's PATH; every other command (`sh`, `sleep`, `echo`...) is the machine's.
Each follows busybox's options and messages for the cases a connectivity check needs.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path


def write_applets(directory: Path) -> None:
    """Create `directory` (0700) with an executable per stand-in applet (0700, made so at creation)."""
    directory.mkdir(mode=0o700, exist_ok=True)
    for applet in ("wget", "nc"):
        path = directory / applet
        text = (
            f"#!{sys.executable}\nimport sys\nfrom netpolcheck.hollow.images import busybox\n"
            f"sys.exit(busybox.{applet}(sys.argv[1:]))\n"
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)


def _fail(applet: str, message: str) -> int:
    print(f"{applet}: {message}", file=sys.stderr, flush=True)
    return 1


def wget(argv: list[str]) -> int:
    """`wget [-q] [-O FILE|-] [-T SEC] [--spider] URL`, as busybox: exit 1 and one line on failure."""
    quiet, spider, output, timeout, urls = False, False, "", 900.0, []
    items = list(argv)
    while items:
        item = items.pop(0)
        if item in ("--quiet", "--spider") or item.startswith(("--output-document=", "--timeout=")):
            name, _, value = item.partition("=")
            quiet, spider = quiet or name == "--quiet", spider or name == "--spider"
            output = value if name == "--output-document" else output
            if name == "--timeout" and not value.replace(".", "", 1).isdigit():
                return _fail("wget", f"invalid number '{value}'")
            timeout = float(value) if name == "--timeout" else timeout
        elif item.startswith("-") and len(item) > 1:  # short options, combinable: -qO- -T 3
            flags = item[1:]
            while flags:
                flag, flags = flags[0], flags[1:]
                if flag == "q":
                    quiet = True
                elif flag in "OT":
                    value, flags = flags or (items.pop(0) if items else ""), ""
                    if flag == "O":
                        output = value
                    elif not value.replace(".", "", 1).isdigit():
                        return _fail("wget", f"invalid number '{value}'")
                    else:
                        timeout = float(value)
                else:
                    return _fail("wget", f"invalid option -- '{flag}'")
        else:
            urls.append(item if "://" in item else f"http://{item}")
    if len(urls) != 1:
        return _fail("wget", "exactly one URL expected")
    url = urls[0]
    if not quiet:
        print(f"Connecting to {url.split('://', 1)[1].split('/', 1)[0]}", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = b"" if spider else response.read()
    except urllib.error.HTTPError as exc:
        return _fail("wget", f"server returned error: HTTP/1.1 {exc.code} {exc.reason}")
    except TimeoutError:
        return _fail("wget", "download timed out")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _fail("wget", f"can't connect to remote host: {getattr(reason, 'strerror', None) or reason}")
    if spider:
        return 0
    if output == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    target = output or (url.rstrip("/").rsplit("/", 1)[-1] if url.count("/") > 2 else "") or "index.html"
    Path(target).write_bytes(body)
    if not quiet:
        print(f"saving to '{target}'", file=sys.stderr, flush=True)
    return 0


def nc(argv: list[str]) -> int:
    """`nc [-z] [-w SEC] HOST PORT` (connect; stdin to the peer, the peer to stdout) or `nc -l -p PORT`."""
    listen, scan, wait, port, rest = False, False, None, "", []
    items = list(argv)
    while items:
        item = items.pop(0)
        if item.startswith("-") and len(item) > 1:
            flags = item[1:]
            while flags:
                flag, flags = flags[0], flags[1:]
                if flag in "wp":
                    value = flags or (items.pop(0) if items else "")
                    flags = ""
                    if flag == "w":
                        if not value.replace(".", "", 1).isdigit():
                            return _fail("nc", f"invalid number '{value}'")
                        wait = float(value)
                    else:
                        port = value
                elif flag == "l":
                    listen = True
                elif flag == "z":
                    scan = True
                elif flag in "vnk":
                    pass
                else:
                    return _fail("nc", f"invalid option -- '{flag}'")
        else:
            rest.append(item)
    try:
        if listen:
            return _listen(int(port or (rest[-1] if rest else "0")))
        if len(rest) != 2:
            return _fail("nc", "usage: nc [-z] [-w SEC] HOST PORT")
        conn = socket.create_connection((rest[0], int(rest[1])), timeout=wait)
    except (OSError, ValueError) as exc:
        return _fail("nc", f"can't connect to remote host ({rest[0] if rest else ''}): {exc}")
    with conn:
        if not scan:
            _pump(conn, wait)
    return 0


def _listen(port: int) -> int:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(1)
    conn, _ = server.accept()
    with conn, server:
        _pump(conn, None)
    return 0


def _pump(conn: socket.socket, idle: float | None) -> None:
    """Copy stdin to the peer and the peer to stdout until the peer closes (or `idle` s pass quietly)."""
    conn.settimeout(None)
    sources: list[int] = [conn.fileno(), sys.stdin.fileno()]
    while True:
        readable, _, _ = select.select(sources, [], [], idle)
        if not readable:
            return
        if conn.fileno() in readable:
            data = conn.recv(65536)
            if not data:
                return
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        if sys.stdin.fileno() in readable:
            data = os.read(sys.stdin.fileno(), 65536)
            if data:
                conn.sendall(data)
            else:
                sources.remove(sys.stdin.fileno())
                conn.shutdown(socket.SHUT_WR)
