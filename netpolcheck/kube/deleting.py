"""Deleting objects and waiting until they are gone (finalizers, graceful pod deletion included)."""

from __future__ import annotations

from collections.abc import Iterable

from kubernetes.client.exceptions import ApiException

from netpolcheck.kube import fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import ObjectRef, path_of
from netpolcheck.kube.waiting import wait_for


def delete(api: KubeApi, ref: ObjectRef, grace_seconds: int | None = None) -> bool:
    """Ask for deletion (background propagation); False when it was already gone."""
    query = [("propagationPolicy", "Background")]
    if grace_seconds is not None:
        query.append(("gracePeriodSeconds", str(grace_seconds)))
    try:
        api.request("DELETE", path_of(api, ref), query=query)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def wait_gone(api: KubeApi, refs: Iterable[ObjectRef], timeout: float = 120.0) -> None:
    """Wait until none of `refs` exists any more."""
    pending = list(refs)

    def gone() -> bool:
        pending[:] = [r for r in pending if fetching.get(api, r) is not None]
        return not pending

    wait_for(
        gone,
        f"{len(pending)} object(s) to be deleted",
        timeout=timeout,
        describe_last=lambda: "still present: " + ", ".join(str(r) for r in pending[:10]),
    )


def delete_and_wait(
    api: KubeApi, refs: Iterable[ObjectRef], timeout: float = 120.0, grace_seconds: int | None = None
) -> None:
    """Delete every ref, then wait until all are gone (each deletion requested before any wait)."""
    refs = list(refs)
    for ref in refs:
        delete(api, ref, grace_seconds)
    wait_gone(api, refs, timeout)
