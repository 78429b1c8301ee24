"""The hollow kubelet, one module per job (docs/hollow-internals.md, "The kubelet in parts").

agent      the Kubelet: pod events, the worker pool, the monitor loop, status writes
scheduler  binding unscheduled pods to the node with the fewest pods
podsetup   network, volumes, container records, launches (service-account files, per-pod paths)
restarts   restartPolicy and the one back-off
readiness  set-up and READY detection, exec readiness probes
status     pod status as a pure function of the run record
runtime    exec and logs for the API server
nodes      the Node objects
records    the run records all of them share
"""

from netpolcheck.hollow.kubelet.agent import STOP_GRACE_SECONDS, Kubelet
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun

__all__ = ["STOP_GRACE_SECONDS", "ContainerRun", "Kubelet", "PodRun"]
