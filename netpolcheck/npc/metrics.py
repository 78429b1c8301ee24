"""Prometheus text endpoint with weave-npc's two metrics (blocked connections, enforcement errors)."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocked: Counter[tuple[str, int]] = Counter()
        self.errors = 0

    def count_blocked(self, protocol: str, dport: int) -> None:
        with self.lock:
            self.blocked[(protocol, dport)] += 1

    def count_error(self, n: int = 1) -> None:
        with self.lock:
            self.errors += n

    def text(self) -> str:
        with self.lock:
            lines = ["# TYPE weavenpc_blocked_connections_total counter"]
            lines += [
                f'weavenpc_blocked_connections_total{{dport="{port}",protocol="{proto}"}} {n}'
                for (proto, port), n in sorted(self.blocked.items())
            ]
            lines += [
                "# TYPE weavenpc_policy_enforcement_errors counter",
                f"weavenpc_policy_enforcement_errors {self.errors}",
            ]
        return "\n".join(lines) + "\n"

    def serve(self, addr: str) -> ThreadingHTTPServer:
        host, _, port = addr.rpartition(":")
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = metrics.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        return server
