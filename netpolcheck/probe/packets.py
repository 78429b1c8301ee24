"""Packets the prober sends and the few fields it reads back: scapy builds and dissects them.

scapy is imported here only, lazily, so that validating input never pays for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
PROTOCOL_NUMBERS = {"TCP": IPPROTO_TCP, "UDP": IPPROTO_UDP, "SCTP": IPPROTO_SCTP}

ICMP_DEST_UNREACH = 3
ICMP_PORT_UNREACH = 3
ICMP_UNREACH_NAMES = {
    0: "net unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "net administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}


def tcp_syn(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    from scapy.layers.inet import IP, TCP

    return bytes(
        IP(src=src, dst=dst, ttl=64)
        / TCP(sport=sport, dport=dport, flags="S", seq=seq, window=64240, options=[("MSS", 1460)])
    )


class SynTemplate:
    """A scapy-built SYN for one (source, target, port), re-stamped per attempt with a new source port and
    sequence number (and the TCP checksum recomputed), so a retransmission costs microseconds, not a build.
    """

    def __init__(self, src: str, dst: str, dport: int) -> None:
        self.wire = bytearray(tcp_syn(src, dst, 0, dport, 0))
        self.tcp_offset = (self.wire[0] & 0x0F) * 4
        self.pseudo_header = bytes(self.wire[12:20]) + struct.pack(
            "!BBH", 0, IPPROTO_TCP, len(self.wire) - self.tcp_offset
        )

    def stamp(self, sport: int, seq: int) -> bytes:
        wire = self.wire
        offset = self.tcp_offset
        struct.pack_into("!H", wire, offset, sport)
        struct.pack_into("!I", wire, offset + 4, seq)
        struct.pack_into("!H", wire, offset + 16, 0)
        struct.pack_into("!H", wire, offset + 16, internet_checksum(self.pseudo_header + wire[offset:]))
        return bytes(wire)


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum (as in IP, TCP, UDP headers)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def sctp_init(src: str, dst: str, sport: int, dport: int, tag: int) -> bytes:
    from scapy.layers.inet import IP
    from scapy.layers.sctp import SCTP, SCTPChunkInit

    return bytes(
        IP(src=src, dst=dst, ttl=64)
        / SCTP(sport=sport, dport=dport, tag=0)
        / SCTPChunkInit(init_tag=tag, a_rwnd=65535, n_out_streams=1, n_in_streams=1, init_tsn=tag)
    )


@dataclass(frozen=True)
class TcpAnswer:
    src: str
    sport: int
    dport: int
    flags: str  # scapy's flag letters, e.g. "SA", "RA"
    ack: int


@dataclass(frozen=True)
class SctpAnswer:
    src: str
    sport: int
    dport: int
    tag: int
    chunk_type: int  # 2 = INIT-ACK, 6 = ABORT


@dataclass(frozen=True)
class IcmpError:
    src: str  # who sent the ICMP error
    type: int
    code: int
    quoted_protocol: int
    quoted_dst: str
    quoted_sport: int
    quoted_dport: int
    quoted_payload: bytes  # what follows the quoted transport header's first 8 bytes, if quoted


def ports_of(datagram: bytes) -> tuple[str, int, int] | None:
    """(source address, source port, destination port) of an IPv4 datagram, cheaply, or None."""
    if len(datagram) < 20:
        return None
    header_length = (datagram[0] & 0x0F) * 4
    if len(datagram) < header_length + 4:
        return None
    sport, dport = struct.unpack_from("!HH", datagram, header_length)
    return ".".join(str(b) for b in datagram[12:16]), sport, dport


def parse_tcp_answer(datagram: bytes) -> TcpAnswer | None:
    from scapy.layers.inet import IP, TCP

    packet = IP(datagram)
    if TCP not in packet:
        return None
    segment = packet[TCP]
    return TcpAnswer(packet.src, segment.sport, segment.dport, str(segment.flags), segment.ack)


def parse_sctp_answer(datagram: bytes) -> SctpAnswer | None:
    header_length = (datagram[0] & 0x0F) * 4
    if len(datagram) < header_length + 13:
        return None
    sport, dport, tag = struct.unpack_from("!HHI", datagram, header_length)
    chunk_type = datagram[header_length + 12]
    return SctpAnswer(".".join(str(b) for b in datagram[12:16]), sport, dport, tag, chunk_type)


def parse_icmp_error(datagram: bytes) -> IcmpError | None:
    """The destination-unreachable error in `datagram` with the header it quotes, or None."""
    from scapy.layers.inet import ICMP, IP

    packet = IP(datagram)
    if ICMP not in packet or packet[ICMP].type != ICMP_DEST_UNREACH:
        return None
    quoted = bytes(packet[ICMP].payload)
    if len(quoted) < 20:
        return None
    quoted_header_length = (quoted[0] & 0x0F) * 4
    if len(quoted) < quoted_header_length + 4:
        return None
    sport, dport = struct.unpack_from("!HH", quoted, quoted_header_length)
    return IcmpError(
        src=packet.src,
        type=packet[ICMP].type,
        code=packet[ICMP].code,
        quoted_protocol=quoted[9],
        quoted_dst=".".join(str(b) for b in quoted[16:20]),
        quoted_sport=sport,
        quoted_dport=dport,
        quoted_payload=quoted[quoted_header_length + 8 :],
    )
