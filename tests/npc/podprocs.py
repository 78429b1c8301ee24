"""Processes the netns tests run inside pod namespaces (standalone script, stdlib only).

serve PORTS      TCP and UDP echo on each port; prints READY once listening.
probe TIMEOUT    reads [{"ip","port","protocol"}] on stdin, prints one verdict per target:
                 allowed | refused | rejected | dropped (TCP: connect within TIMEOUT; UDP: echo, 2 tries).
hold IP PORT     keeps one TCP connection, sends a 4-byte ping every 0.1 s, prints one line per ping:
                 "ok" or "lost"; a line on stdin prints MARK; stops when stdin closes.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


def serve(ports: list[int]) -> None:
    tcp, udp = [], []
    for port in ports:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", port))
        t.listen(128)
        tcp.append(t)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        udp.append(u)
    print("READY", flush=True)

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    while True:
        ready, _, _ = select.select(tcp + udp, [], [])
        for sock in ready:
            if sock in tcp:
                conn, _ = sock.accept()
                threading.Thread(target=echo, args=(conn,), daemon=True).start()
            else:
                data, peer = sock.recvfrom(4096)
                sock.sendto(data, peer)


def probe_one(target: dict[str, object], timeout: float) -> str:
    """allowed (answered), refused (RST, port unreachable), rejected (other ICMP error), dropped (silence)."""
    ip, port = str(target["ip"]), int(str(target["port"]))
    if target["protocol"] == "TCP":
        try:
            with socket.create_connection((ip, port), timeout=timeout):
                return "allowed"
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "dropped"
        except OSError:
            return "rejected"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((ip, port))  # connected, so ICMP errors are reported to us
        for _ in range(2):
            try:
                sock.send(b"ping")
                if sock.recv(64) == b"ping":
                    return "allowed"
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                continue
            except OSError:
                return "rejected"
    return "dropped"


def probe(timeout: float) -> None:
    targets = json.load(sys.stdin)
    with ThreadPoolExecutor(max_workers=64) as pool:
        answers = list(pool.map(lambda t: probe_one(t, timeout), targets))
    print(json.dumps(answers), flush=True)


def hold(ip: str, port: int) -> None:
    sock = socket.create_connection((ip, port), timeout=2)
    sock.settimeout(0.5)
    print("CONNECTED", flush=True)
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable:
            if not sys.stdin.readline():
                return
            print("MARK", flush=True)  # lets the test read only the pings sent after this point
        try:
            sock.sendall(b"ping")
            print("ok" if sock.recv(4) == b"ping" else "lost", flush=True)
        except OSError:
            print("lost", flush=True)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "serve":
        serve([int(p) for p in sys.argv[2].split(",")])
    elif command == "probe":
        probe(float(sys.argv[2]))
    elif command == "hold":
        hold(sys.argv[2], int(sys.argv[3]))
