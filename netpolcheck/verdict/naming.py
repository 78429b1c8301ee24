"""Logical names of a case (`x`, `x/a`) and the cluster names of one run of it.

A case's namespace `x` becomes `<run prefix>-x` on the cluster and keeps its role as labels
(`netpolcheck.io/role: x`, `netpolcheck.io/case: <case id>` plus the case's own labels), so cases run
side by side. In policy manifests the placeholder `{ns:x}` stands for the cluster name of `x` (for
`kubernetes.io/metadata.name` selectors).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

ROLE_LABEL = "netpolcheck.io/role"
CASE_LABEL = "netpolcheck.io/case"
_PLACEHOLDER = re.compile(r"\{(ns|ip):([a-z0-9-]+(?:/[a-z0-9-]+)?)\}")


def run_prefix(case_id: str, salt: str | None = None) -> str:
    """`np-<hash>`: short, unique per case and per run (process id and a random salt)."""
    token = f"{case_id}:{salt if salt is not None else os.urandom(6).hex()}:{os.getpid()}"
    return "np-" + hashlib.sha256(token.encode()).hexdigest()[:8]


class Naming:
    def __init__(self, case_id: str, prefix: str) -> None:
        self.case_id = case_id
        self.prefix = prefix

    def namespace(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    def logical_namespace(self, real: str) -> str:
        head = f"{self.prefix}-"
        return real[len(head) :] if real.startswith(head) else real

    def logical_key(self, real_key: str) -> str:
        """`np-1234abcd-x/a` -> `x/a`; externals and foreign keys stay as they are."""
        ns, sep, pod = real_key.partition("/")
        return f"{self.logical_namespace(ns)}/{pod}" if sep else real_key

    def case_label(self) -> str:
        """The case id as a label value (at most 63 characters)."""
        return self.case_id[:63].strip("-.")

    def namespace_labels(self, logical: str, labels: Mapping[str, str]) -> dict[str, str]:
        return {
            ROLE_LABEL: logical,
            CASE_LABEL: self.case_label(),
            **labels,
        }

    def real_namespaces(self, logical: Iterable[str]) -> list[str]:
        return [self.namespace(name) for name in logical]

    def substitute(self, value: Any, ips: Mapping[str, str] | None = None) -> Any:
        """A copy of a manifest with `{ns:x}` replaced by the cluster name of `x` and `{ip:x/a}` by the
        IP of pod `x/a` (from `ips`, keyed by logical pod key)."""
        if isinstance(value, str):
            return _PLACEHOLDER.sub(lambda m: self._placeholder(m.group(1), m.group(2), ips or {}), value)
        if isinstance(value, Mapping):
            return {k: self.substitute(v, ips) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.substitute(v, ips) for v in value]
        return value

    def _placeholder(self, kind: str, name: str, ips: Mapping[str, str]) -> str:
        if kind == "ns":
            return self.namespace(name)
        if name not in ips:
            raise KeyError(f"{{ip:{name}}}: no pod {name} with an IP in the case")
        return ips[name]
