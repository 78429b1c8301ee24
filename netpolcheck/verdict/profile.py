"""The run's profile from `--profile spec|weave|weave-X`, and the implementation's own profile."""

from __future__ import annotations

import re

from netpolcheck.errors import UsageError
from netpolcheck.model import SPEC, Profile
from netpolcheck.model.profiles import weave_profile

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def check_profile_option(name: str) -> str:
    """Validate the option's text before any cluster work (exit 2 on a typo)."""
    if name in ("spec", "weave"):
        return name
    if name.startswith("weave-") and _VERSION.match(name.removeprefix("weave-")):
        return name
    raise UsageError(f"--profile: {name!r} is not spec, weave or weave-X.Y.Z (e.g. weave-2.8.1)")


def run_profile(name: str, weave_version: str | None) -> Profile:
    """`weave` follows the version the cluster runs now (it changes across an upgrade step)."""
    check_profile_option(name)
    if name == "spec":
        return SPEC
    if name == "weave":
        if weave_version is None:
            raise UsageError("--profile weave: the cluster runs no Weave Net (no weave-net DaemonSet found)")
        return weave_profile(weave_version)
    return weave_profile(name.removeprefix("weave-"))


def implementation_profile(weave_version: str | None) -> Profile | None:
    """What the implementation is documented to do; None when it is not Weave (no prediction)."""
    return None if weave_version is None else weave_profile(weave_version)
