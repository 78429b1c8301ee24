#!/usr/bin/env bash
# Installs what the tests and the suite need on a fresh Debian or Ubuntu machine, as root (no sudo):
# the kernel tools the embedded cluster and the probe agent drive, and tox. Idempotent.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "setup-debian.sh: run as root (it installs Debian packages and the embedded cluster needs root)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
need_apt=0
for tool in ip iptables ipset conntrack tc ulogd tcpdump setpriv; do
    command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
ls /usr/lib/*-linux-gnu/ulogd/ulogd_output_PCAP.so >/dev/null 2>&1 || need_apt=1
if [ "$need_apt" = 1 ]; then
    apt-get update -qq
    apt-get install -y -qq iptables ipset conntrack iproute2 libpcap0.8 ulogd2 ulogd2-pcap tcpdump procps \
        util-linux >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check "tox>=4.22,<5"
