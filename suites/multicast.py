"""A multicast round on the cluster: receivers join a group, senders send to it, from inside probe pods.

The probe agent probes unicast only (it refuses 224.0.0.0/4 targets: no one answers a multicast SYN),
so the multicast case runs two small stdlib scripts through exec instead: the receiver joins
`GROUP` on its own address and reports which sources it heard; each sender sends a token to the group
from its own address (IP_MULTICAST_IF, TTL 1: the datagrams never leave the pod network's segment).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from netpolcheck.kube import execing
from netpolcheck.kube.connection import KubeApi

GROUP = "239.255.80.1"  # administratively scoped (RFC 2365), sent with TTL 1
PORT = 5007
SEND_SECONDS = 8.0
LISTEN_SECONDS = 15.0  # the receiver stops as soon as every sender was heard

RECEIVE = """
import json, socket, sys, time
group, port, own = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds, want = float(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((group, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(own))
end, heard = time.monotonic() + seconds, {}
while len(heard) < want and time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        data, source = s.recvfrom(512)
    except socket.timeout:
        break
    heard.setdefault(source[0], data.decode(errors="replace"))
print(json.dumps(heard))
"""

SEND = """
import socket, sys, time
group, port, own = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds, token = float(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(own))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
end, sent = time.monotonic() + seconds, 0
while time.monotonic() < end:
    s.sendto(token.encode(), (group, port))
    sent += 1
    time.sleep(0.1)
print(sent)
"""


@dataclass(frozen=True)
class Member:
    namespace: str  # on the cluster
    pod: str
    ip: str

    @property
    def ref(self) -> tuple[str, str]:
        return (self.namespace, self.pod)


def _exec(api: KubeApi, member: Member, script: str, args: list[str], timeout: float) -> str:
    """Run `script` with python in the member's pod, on a client of its own (exec swaps the client's
    request function while it runs, so concurrent execs never share one)."""
    own = KubeApi.from_kubeconfig(api.kubeconfig, api.context) if api.kubeconfig is not None else api
    try:
        result = execing.exec_in(own, member.ref, ["python", "-c", script, *args], timeout=timeout)
        return result.check(f"multicast script in {member.namespace}/{member.pod}").stdout
    finally:
        if own is not api:
            own.close()


def round_trip(api: KubeApi, receiver: Member, senders: list[Member]) -> dict[str, str]:
    """Source address -> token of every sender the receiver heard on GROUP:PORT."""
    common = [GROUP, str(PORT)]
    with ThreadPoolExecutor(max_workers=1 + len(senders)) as pool:
        heard = pool.submit(
            _exec,
            api,
            receiver,
            RECEIVE,
            [*common, receiver.ip, str(LISTEN_SECONDS), str(len(senders))],
            LISTEN_SECONDS + 60,
        )
        sent = [
            pool.submit(_exec, api, s, SEND, [*common, s.ip, str(SEND_SECONDS), s.pod], SEND_SECONDS + 60)
            for s in senders
        ]
        for future in sent:
            future.result()
        found: dict[str, str] = json.loads(heard.result())
    return found
