"""Reads NFLOG group 86 through a raw nfnetlink socket and reports what weave-npc would log as blocked.

weave-npc gets these packets from ulogd (NFLOG -> pcap FIFO); we bind the group ourselves, with no
ulogd in between, and decode the IPv4 header: "TCP connection from A:p to B:q blocked by Weave NPC."
Like weave-npc, only a plain SYN is reported for TCP, UDP always, other protocols never.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
CMD_BIND, CMD_PF_BIND = 1, 3
COPY_PACKET = 2
NFULA_PAYLOAD = 9
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


@dataclass(frozen=True)
class Blocked:
    protocol: str
    src: str
    sport: int
    dst: str
    dport: int

    def message(self) -> str:
        return (
            f"{self.protocol} connection from {self.src}:{self.sport} to {self.dst}:{self.dport} "
            "blocked by Weave NPC."
        )


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _config(family: int, group: int, attrs: bytes, seq: int) -> bytes:
    body = struct.pack("=BBH", family, 0, socket.htons(group)) + attrs
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def decode_packet(ip: bytes) -> Blocked | None:
    """The blocked-connection record for one IPv4 packet, or None if weave would not log it."""
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header_len = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    l4 = ip[header_len:]
    if proto == socket.IPPROTO_TCP and len(l4) >= 14:
        flags = l4[13]
        if flags & 0x3F != 0x02:  # only a plain SYN
            return None
        sport, dport = struct.unpack("!HH", l4[:4])
        return Blocked("TCP", src, sport, dst, dport)
    if proto == socket.IPPROTO_UDP and len(l4) >= 4:
        sport, dport = struct.unpack("!HH", l4[:4])
        return Blocked("UDP", src, sport, dst, dport)
    return None


class NflogReader:
    """Bound to one NFLOG group in the current network namespace."""

    def __init__(self, group: int = 86) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._request(_config(socket.AF_INET, 0, _attr(NFULA_CFG_CMD, bytes([CMD_PF_BIND])), 1))
        self._request(_config(socket.AF_UNSPEC, group, _attr(NFULA_CFG_CMD, bytes([CMD_BIND])), 2))
        mode = struct.pack("!IBx", 0xFFFF, COPY_PACKET)
        self._request(_config(socket.AF_UNSPEC, group, _attr(NFULA_CFG_MODE, mode), 3))

    def _request(self, message: bytes) -> None:
        self.sock.send(message)
        reply = self.sock.recv(65536)
        _, kind = struct.unpack_from("=IH", reply)
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", reply, 16)
            if error != 0:
                raise OSError(-error, f"NFLOG config failed: {errno.errorcode.get(-error, error)}")

    def run(self, report: Callable[[Blocked], None], stopped: Callable[[], bool]) -> None:
        self.sock.settimeout(0.5)
        while not stopped():
            try:
                data = self.sock.recv(1 << 17)
            except TimeoutError:
                continue
            except OSError:  # ENOBUFS under a flood: messages lost, keep reading
                continue
            for payload in _payloads(data):
                blocked = decode_packet(payload)
                if blocked is not None:
                    report(blocked)

    def close(self) -> None:
        self.sock.close()


def _payloads(data: bytes) -> list[bytes]:
    found = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            attr = offset + 20
            end = offset + length
            while attr + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFULA_PAYLOAD:
                    found.append(data[attr + 4 : attr + alen])
                attr += (alen + 3) & ~3
        offset += (length + 3) & ~3
    return found
