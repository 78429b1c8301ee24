"""netpolcheck.kube: the only code that talks to a Kubernetes API.

One concept a module, usable outside pytest (docs/kube.md has the full reference):

- `waiting`     the one bounded wait helper (`wait_for`, `WaitTimeout`)
- `connection`  `KubeApi`: a client from a kubeconfig path and context
- `objects`     YAML/dict handling: flatten lists, object references, REST paths
- `creating`, `patching`, `deleting`, `fetching`: the API verbs over plain dicts
- `namespaces`  run-owned namespaces (run label, pod-security label, leftovers of killed runs)
- `probepods`   probe pods from manifests/probe/pod.yaml on chosen nodes
- `execing`     exec with stdout, stderr and exit code; `probe()` runs the probe agent in a pod
- `rollout`     DaemonSet rollout status, as `kubectl rollout status` reads it
- `weave`       the weave-net DaemonSet: version, install, upgrade, health, "blocked" log lines
- `snapshot`    the cluster as a STATE document for `netpolcheck expect`
- `provisioners` hollow, kind, kops, existing: each gives one `Cluster`
"""
