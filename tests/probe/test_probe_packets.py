"""Packet building and the answers' fields, without the network."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP

from netpolcheck.probe import packets

addresses = st.ip_addresses(v=4).map(str)
ports = st.integers(1, 65535)


def without_ip_checksum(wire: bytes) -> bytes:
    """The agent leaves the IP header checksum 0: with IP_HDRINCL the kernel always fills it in."""
    return wire[:10] + b"\0\0" + wire[12:]


@given(src=addresses, dst=addresses, sport=ports, dport=ports, seq=st.integers(0, 2**32 - 1))
def test_restamped_syn_is_byte_identical_to_a_scapy_build(
    src: str, dst: str, sport: int, dport: int, seq: int
) -> None:
    toward = packets.SynTemplate().toward(src, dst, dport)
    toward.stamp(1, 1)  # a previous attempt's stamp must leave nothing behind
    expected = without_ip_checksum(packets.tcp_syn(src, dst, sport, dport, seq))
    assert toward.stamp(sport, seq) == expected


@given(src=addresses, dst=addresses, sport=ports, dport=ports, payload=st.binary(max_size=64))
def test_udp_datagram_is_byte_identical_to_a_scapy_build(
    src: str, dst: str, sport: int, dport: int, payload: bytes
) -> None:
    built = bytes(IP(src=src, dst=dst, ttl=64) / UDP(sport=sport, dport=dport) / payload)
    assert packets.udp_datagram(src, dst, sport, dport, payload) == without_ip_checksum(built)
    assert packets.parse_udp(built) == packets.UdpDatagram(src, sport, dport, payload)


def test_icmp_error_is_matched_through_the_header_it_quotes() -> None:
    probe = IP(src="10.251.0.2", dst="10.251.0.3") / UDP(sport=40000, dport=81) / b"npcprobe 00\n"
    error = bytes(IP(src="10.251.0.1", dst="10.251.0.2") / ICMP(type=3, code=13) / bytes(probe))
    parsed = packets.parse_icmp_error(error)
    assert parsed is not None
    assert (parsed.src, parsed.type, parsed.code) == ("10.251.0.1", 3, 13)
    assert (parsed.quoted_protocol, parsed.quoted_dst, parsed.quoted_sport, parsed.quoted_dport) == (
        packets.IPPROTO_UDP,
        "10.251.0.3",
        40000,
        81,
    )


def test_tcp_answer_fields() -> None:
    answer = bytes(IP(src="10.251.0.3", dst="10.251.0.2") / TCP(sport=80, dport=40000, flags="SA", ack=1235))
    syn_ack = packets.TCP_SYN | packets.TCP_ACK
    assert packets.parse_tcp_answer(answer) == packets.TcpAnswer("10.251.0.3", 80, 40000, syn_ack, 1235)
    assert packets.ports_of(answer) == ("10.251.0.3", 80, 40000)


def test_not_an_unreachable_is_ignored() -> None:
    echo_reply = bytes(IP(src="10.251.0.3", dst="10.251.0.2") / ICMP(type=0))
    assert packets.parse_icmp_error(echo_reply) is None
