"""Stand-in for hashicorp/http-echo: an HTTP server answering every request with `-text`.

`python -m netpolcheck.hollow.images.http_echo -text=hello -listen=:5678` accepts the image's flags
(`-text`, `-listen`, `-status-code`; one or two leading dashes, `=` or a separate value) and, like the
image, answers any path with the text and a newline, and `/health` with `{"status":"ok"}`.
"""

from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FLAGS = ("text", "listen", "status-code")


class UsageError(ValueError):
    pass


def parse(argv: list[str]) -> dict[str, str]:
    values = {"listen": ":5678", "status-code": "200"}
    items = list(argv)
    while items:
        item = items.pop(0)
        name, eq, value = item.lstrip("-").partition("=")
        if not item.startswith("-") or name not in FLAGS:
            raise UsageError(f"flag provided but not defined: {item}")
        if not eq:
            if not items:
                raise UsageError(f"flag needs an argument: -{name}")
            value = items.pop(0)
        values[name] = value
    if "text" not in values:
        raise UsageError("missing -text option")
    return values


def listen_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"bad -listen address {listen!r}")
    return host or "0.0.0.0", int(port)


def serve(text: str, address: tuple[str, int], status: int) -> ThreadingHTTPServer:
    body = (text + "\n").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload, code = (b'{"status":"ok"}\n', 200) if self.path == "/health" else (body, status)
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-App-Name", "http-echo")
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_PUT = do_HEAD = do_GET

        def log_message(self, format: str, *args: object) -> None:
            sys.stdout.write(f"{self.address_string()} {format % args}\n")
            sys.stdout.flush()

    return ThreadingHTTPServer(address, Handler)


def main(argv: list[str] | None = None) -> int:
    try:
        values = parse(sys.argv[1:] if argv is None else argv)
        address = listen_address(values["listen"])
        status = int(values["status-code"])
    except (UsageError, ValueError) as exc:
        print(f"http-echo: {exc}", file=sys.stderr)
        return 2
    server = serve(values["text"], address, status)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"[INFO] server is listening on {values['listen']}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
