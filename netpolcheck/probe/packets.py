"""Packets the prober sends and the few fields it reads back.

scapy builds the SYN template and the SCTP INIT (imported here only, lazily, so validating input never
pays for it); the per-attempt stamping, the UDP datagrams and reading answers are plain `struct` work,
because a run of 5,000 targets handles tens of thousands of packets inside one timeout window.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132
PROTOCOL_NUMBERS = {"TCP": IPPROTO_TCP, "UDP": IPPROTO_UDP, "SCTP": IPPROTO_SCTP}

TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10

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
    """The scapy-built SYN every TCP probe starts from; `toward` prepares it for one target."""

    def __init__(self) -> None:
        self.wire = tcp_syn("0.0.0.0", "0.0.0.0", 0, 0, 0)

    def toward(self, src: str, dst: str, dport: int) -> SynToward:
        return SynToward(self.wire, src, dst, dport)


class SynToward:
    """A SYN to one (source, target, port), re-stamped per attempt with a source port and a sequence
    number. The TCP checksum is the precomputed sum of everything fixed plus those two fields, so an
    attempt costs a few microseconds. The IP header checksum is left 0: with IP_HDRINCL the kernel always
    fills it in (raw(7))."""

    def __init__(self, template: bytes, src: str, dst: str, dport: int) -> None:
        wire = bytearray(template)
        self.offset = offset = (wire[0] & 0x0F) * 4
        addresses = socket.inet_aton(src) + socket.inet_aton(dst)
        wire[12:20] = addresses
        struct.pack_into("!H", wire, 10, 0)
        struct.pack_into("!HHI", wire, offset, 0, dport, 0)
        struct.pack_into("!H", wire, offset + 16, 0)
        pseudo = addresses + struct.pack("!BBH", 0, IPPROTO_TCP, len(wire) - offset)
        self.fixed_sum = word_sum(pseudo) + word_sum(bytes(wire[offset:]))
        self.wire = wire

    def stamp(self, sport: int, seq: int) -> bytes:
        wire, offset = self.wire, self.offset
        struct.pack_into("!H", wire, offset, sport)
        struct.pack_into("!I", wire, offset + 4, seq)
        checksum = fold(self.fixed_sum + sport + (seq >> 16) + (seq & 0xFFFF))
        struct.pack_into("!H", wire, offset + 16, checksum)
        return bytes(wire)


class UdpToward:
    """UDP datagrams to one (source, target, port) with a payload of fixed length, re-stamped per attempt
    with a source port and the payload (IP header checksum left to the kernel, as for SYNs)."""

    def __init__(self, src: str, dst: str, dport: int, payload_length: int) -> None:
        addresses = socket.inet_aton(src) + socket.inet_aton(dst)
        length = 8 + payload_length
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + length, 1, 0, 64, IPPROTO_UDP, 0) + addresses
        self.header = bytearray(ip + struct.pack("!HHHH", 0, dport, length, 0))
        pseudo = addresses + struct.pack("!BBH", 0, IPPROTO_UDP, length)
        self.fixed_sum = word_sum(pseudo) + dport + length
        self.payload_length = payload_length

    def stamp(self, sport: int, payload: bytes) -> bytes:
        assert len(payload) == self.payload_length
        header = self.header
        checksum = fold(self.fixed_sum + sport + word_sum(payload)) or 0xFFFF
        struct.pack_into("!H", header, 20, sport)
        struct.pack_into("!H", header, 26, checksum)
        return bytes(header) + payload


def udp_datagram(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """One UDP datagram (the IP header checksum left 0 for the kernel)."""
    return UdpToward(src, dst, dport, len(payload)).stamp(sport, payload)


WORDS: dict[int, struct.Struct] = {}


def word_sum(data: bytes) -> int:
    """The sum of `data` as big-endian 16-bit words (odd length padded with a zero byte), unfolded."""
    if len(data) % 2:
        data += b"\0"
    unpacker = WORDS.get(len(data))
    if unpacker is None:
        unpacker = WORDS[len(data)] = struct.Struct(f"!{len(data) // 2}H")
    return sum(unpacker.unpack(data))


def fold(total: int) -> int:
    """RFC 1071: fold a word sum into 16 bits and complement it."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum (as in IP, TCP, UDP headers)."""
    return fold(word_sum(data))


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
    flags: int  # the TCP flags byte (TCP_SYN | TCP_ACK = a SYN-ACK)
    ack: int


@dataclass(frozen=True)
class UdpDatagram:
    src: str
    sport: int
    dport: int
    payload: bytes


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


def address(datagram: bytes, offset: int) -> str:
    return socket.inet_ntoa(datagram[offset : offset + 4])


def transport_offset(datagram: bytes, protocol: int, minimum: int) -> int | None:
    """Where the `protocol` header starts in an IPv4 datagram holding at least `minimum` bytes of it."""
    if len(datagram) < 20 or datagram[9] != protocol:
        return None
    offset = (datagram[0] & 0x0F) * 4
    return offset if len(datagram) >= offset + minimum else None


def parse_tcp_answer(datagram: bytes) -> TcpAnswer | None:
    offset = transport_offset(datagram, IPPROTO_TCP, 20)
    if offset is None:
        return None
    sport, dport, _, ack, _, flags = struct.unpack_from("!HHIIBB", datagram, offset)
    return TcpAnswer(address(datagram, 12), sport, dport, flags, ack)


def parse_udp(datagram: bytes) -> UdpDatagram | None:
    offset = transport_offset(datagram, IPPROTO_UDP, 8)
    if offset is None:
        return None
    sport, dport = struct.unpack_from("!HH", datagram, offset)
    return UdpDatagram(address(datagram, 12), sport, dport, datagram[offset + 8 :])


def parse_sctp_answer(datagram: bytes) -> SctpAnswer | None:
    header_length = (datagram[0] & 0x0F) * 4
    if len(datagram) < header_length + 13:
        return None
    sport, dport, tag = struct.unpack_from("!HHI", datagram, header_length)
    chunk_type = datagram[header_length + 12]
    return SctpAnswer(".".join(str(b) for b in datagram[12:16]), sport, dport, tag, chunk_type)


def parse_icmp_error(datagram: bytes) -> IcmpError | None:
    """The destination-unreachable error in `datagram` with the header it quotes, or None."""
    offset = transport_offset(datagram, IPPROTO_ICMP, 8)
    if offset is None or datagram[offset] != ICMP_DEST_UNREACH:
        return None
    quoted = datagram[offset + 8 :]
    if len(quoted) < 20:
        return None
    quoted_header_length = (quoted[0] & 0x0F) * 4
    if len(quoted) < quoted_header_length + 4:
        return None
    sport, dport = struct.unpack_from("!HH", quoted, quoted_header_length)
    return IcmpError(
        src=address(datagram, 12),
        type=datagram[offset],
        code=datagram[offset + 1],
        quoted_protocol=quoted[9],
        quoted_dst=address(quoted, 16),
        quoted_sport=sport,
        quoted_dport=dport,
        quoted_payload=quoted[quoted_header_length + 8 :],
    )
