"""A hostile local user and a hostile pod against a root-run hollow cluster (issue: privilege and secrets).

One 2-node cluster with the default weave-net DaemonSet (reference controller), its state dir placed
where a careless user would put it: under a directory every user may enter. The attacks run as
`nobody` (setpriv) or from inside a pod, and each must fail:
- reading or listing anything in the state dir (tokens in kubeconfig and in the containers' spec.json);
- a pod's default service-account token deleting the NetworkPolicy that isolates it (403, the real
  server's Status body), while the controller's account still lists and watches;
- a pod reaching the API at all (only hostNetwork pods, the policy controller, have a path);
- two pods of one name in two namespaces sharing a host path (the probe agent's journal in /tmp).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster, start_cluster, stop_cluster
from tests.hollow.kubetyped import as_body, container_pid, containers_of, meta_of, present, status_of
from tests.hollow.podtools import create_namespace, echo_pod, pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

CIDR = "10.209.0.0/16"  # this module's own pod range (docs/hollow.md lists the test ranges)
AS_NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]
REGISTRY = Path("/run/netpolcheck-hollow")
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def open_parent() -> Iterator[Path]:
    """A directory every user may enter and list (as /tmp or a shared checkout would be)."""
    parent = Path(tempfile.mkdtemp(prefix="hollowsec-"))
    os.chmod(parent, 0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(open_parent: Path) -> Iterator[Cluster]:
    c = start_cluster(open_parent / "state", "--nodes", "2", cidr=CIDR)
    try:
        wait_until(lambda: len(weave_pods(c)) == 2, 30, "the weave-net pods on both nodes to be Ready")
        yield c
    finally:
        stop_cluster(c)


def weave_pods(c: Cluster) -> list[Any]:
    pods = c.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items
    return [
        p
        for p in pods
        if status_of(p).phase == "Running"
        and {x.type: x.status for x in status_of(p).conditions or []}.get("Ready") == "True"
    ]


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AS_NOBODY, *argv], capture_output=True, text=True, timeout=30)


def api_request(
    c: Cluster, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """One request to the cluster's API with `token`; (HTTP code, JSON body)."""
    config = yaml.safe_load(c.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    ca = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    ctx = ssl.create_default_context(cadata=ca)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            # a watch answers with one JSON event per line: keep the first
            return resp.status, json.loads(resp.read().split(b"\n")[0] or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def admin_token(c: Cluster) -> str:
    return str(yaml.safe_load(c.kubeconfig.read_text())["users"][0]["user"]["token"])


def pod_token(c: Cluster, namespace: str, pod: str, container: str | None = None) -> str:
    code, out, err = pod_exec(c.core, namespace, pod, ["cat", f"{SA_DIR}/token"], container)
    assert code == 0, err
    return out.strip()


DENY_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}


@pytest.fixture(scope="module")
def isolated_pod(cluster: Cluster) -> Iterator[str]:
    """Namespace `victim` with a deny-all (ingress and egress) policy and one ordinary pod `p`."""
    create_namespace(cluster.core, "victim")
    client.NetworkingV1Api(cluster.api).create_namespaced_network_policy(
        "victim", as_body(client.V1NetworkPolicy, DENY_ALL)
    )
    cluster.core.create_namespaced_pod("victim", as_body(client.V1Pod, echo_pod("p", node="node1")))
    wait_running(cluster.core, "victim", "p")
    try:
        yield "p"
    finally:
        cluster.core.delete_namespace("victim")
        wait_until(
            lambda: not cluster.core.list_namespaced_pod("victim").items, 30, "the victim pods to be gone"
        )


# ---- the state dir ------------------------------------------------------------------------------


def test_nobody_can_list_or_read_anything_in_the_state_dir(cluster: Cluster, isolated_pod: str) -> None:
    state = cluster.state_dir
    # the attack is possible in principle: nobody can enter the parent and see the state dir's name
    assert as_nobody("ls", str(state.parent)).stdout.split() == ["state"]
    listing = as_nobody("ls", "-la", str(state))
    assert listing.returncode != 0 and "Permission denied" in listing.stderr
    for target in [state / "kubeconfig", state / "cluster.json", state / "api.log", state / "pods"]:
        assert target.exists()
        result = as_nobody("cat", str(target))
        assert result.returncode != 0 and "Permission denied" in result.stderr, target
    spec_files = list((state / "pods").glob("*/*/spec.json"))
    assert spec_files  # every container's spec.json holds its token
    result = as_nobody("cat", str(spec_files[0]))
    assert result.returncode != 0 and "Permission denied" in result.stderr
    found = as_nobody("find", str(state))
    assert found.stdout.strip().splitlines() == [str(state)]  # nothing below it is even named


def test_every_dir_in_the_state_dir_is_0700_and_every_file_0600(cluster: Cluster, isolated_pod: str) -> None:
    """Private to root: directories 0700, files 0600; the busybox stand-in programs (busybox-bin/) are
    executables, 0700."""
    wrong = []
    for root, dirs, files in os.walk(cluster.state_dir):
        for name in [*dirs, *files]:
            path = Path(root) / name
            info = path.lstat()
            executable = path.parent.name == "busybox-bin"
            want = 0o700 if stat.S_ISDIR(info.st_mode) or executable else 0o600
            if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) != want or info.st_uid != 0:
                wrong.append(f"{path} mode {stat.S_IMODE(info.st_mode):04o} uid {info.st_uid}")
    top = cluster.state_dir.stat()
    assert stat.S_IMODE(top.st_mode) == 0o700
    assert wrong == []


def test_no_file_outside_the_state_dir_holds_a_token(cluster: Cluster, isolated_pod: str) -> None:
    tokens = {admin_token(cluster), pod_token(cluster, "victim", isolated_pod)}
    tokens |= {pod_token(cluster, "kube-system", p.metadata.name, "weave-npc") for p in weave_pods(cluster)}
    assert len(tokens) == 3  # admin, victim's default account, weave-net (one token per account)
    outside = [p for p in cluster.state_dir.parent.rglob("*") if cluster.state_dir not in (p, *p.parents)]
    outside += [p for p in REGISTRY.rglob("*")]
    assert outside, "the registry copy of cluster.json is expected under /run/netpolcheck-hollow"
    for path in outside:
        if path.is_file():
            text = path.read_bytes()
            assert not any(t.encode() in text for t in tokens), path
            if cluster.prefix in path.name:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_nobody_cannot_read_a_token_through_proc(cluster: Cluster, isolated_pod: str) -> None:
    pid = container_pid(containers_of(cluster.core.read_namespaced_pod(isolated_pod, "victim"))[0])
    result = as_nobody("cat", f"/proc/{pid}/root{SA_DIR}/token")
    assert result.returncode != 0 and "Permission denied" in result.stderr


def test_an_existing_state_dir_others_can_read_is_refused(open_parent: Path) -> None:
    shared = open_parent / "shared-state"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)  # whatever the umask
    from tests.hollow.clusterkit import hollow

    result = hollow("up", "--state-dir", str(shared), "--pod-cidr", "10.210.0.0/16")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not private" in result.stderr
    assert list(shared.iterdir()) == []


# ---- tokens and RBAC ----------------------------------------------------------------------------


def test_a_pods_default_token_cannot_delete_the_policy_that_isolates_it(
    cluster: Cluster, isolated_pod: str
) -> None:
    token = pod_token(cluster, "victim", isolated_pod)
    assert token != admin_token(cluster)
    path = "/apis/networking.k8s.io/v1/namespaces/victim/networkpolicies/deny-all"
    code, body = api_request(cluster, token, "DELETE", path)
    assert code == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'networkpolicies.networking.k8s.io "deny-all" is forbidden: User '
        '"system:serviceaccount:victim:default" cannot delete resource "networkpolicies" in API group '
        '"networking.k8s.io" in the namespace "victim"',
        "reason": "Forbidden",
        "details": {"name": "deny-all", "group": "networking.k8s.io", "kind": "networkpolicies"},
        "code": 403,
    }
    assert api_request(cluster, admin_token(cluster), "GET", path)[0] == 200  # still there
    # nothing else either: no secrets, no pods (a root shell), not even a list
    assert api_request(cluster, token, "GET", "/api/v1/namespaces/victim/secrets")[0] == 403
    code, body = api_request(cluster, token, "GET", "/api/v1/pods")
    assert code == 403 and body["message"].endswith("at the cluster scope")
    shell = echo_pod("root-shell")
    assert api_request(cluster, token, "POST", "/api/v1/namespaces/victim/pods", shell)[0] == 403
    # discovery stays open to any authenticated user, as with a real cluster's default RBAC
    assert api_request(cluster, token, "GET", "/apis")[0] == 200
    assert api_request(cluster, "not-a-token", "GET", "/apis")[0] == 401


def test_the_controllers_account_reads_but_cannot_write(cluster: Cluster) -> None:
    pod = weave_pods(cluster)[0].metadata.name
    token = pod_token(cluster, "kube-system", pod, "weave-npc")
    for path in ("/api/v1/pods", "/api/v1/namespaces", "/apis/networking.k8s.io/v1/networkpolicies"):
        assert api_request(cluster, token, "GET", path)[0] == 200, path
        assert api_request(cluster, token, "GET", path + "?watch=1&timeoutSeconds=1")[0] == 200, path
    assert api_request(cluster, token, "GET", "/api/v1/secrets")[0] == 403
    code, _ = api_request(
        cluster, token, "POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", DENY_ALL
    )
    assert code == 403


def test_rbac_objects_stored_in_the_api_decide(cluster: Cluster, isolated_pod: str) -> None:
    token = pod_token(cluster, "victim", isolated_pod)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    path = "/api/v1/namespaces/victim/pods"
    assert api_request(cluster, token, "GET", path)[0] == 403
    rbac.create_namespaced_role(
        "victim",
        as_body(
            client.V1Role,
            {
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
            },
        ),
    )
    rbac.create_namespaced_role_binding(
        "victim",
        as_body(
            client.V1RoleBinding,
            {
                "metadata": {"name": "read-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "victim"}],
            },
        ),
    )
    code, body = api_request(cluster, token, "GET", path)
    assert code == 200 and [p["metadata"]["name"] for p in body["items"]] == [isolated_pod]
    assert (
        api_request(cluster, token, "GET", "/api/v1/namespaces/default/pods")[0] == 403
    )  # its namespace only
    assert api_request(cluster, token, "DELETE", f"{path}/{isolated_pod}")[0] == 403
    rbac.delete_namespaced_role_binding("read-pods", "victim")
    assert api_request(cluster, token, "GET", path)[0] == 403


# ---- the path to the API ------------------------------------------------------------------------

REACH_API = """
import socket, sys
for host, port in [(a.split(':')[0], int(a.split(':')[1])) for a in sys.argv[1:]]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(host, port, 'connected')
    except OSError as exc:
        print(host, port, 'failed', type(exc).__name__)
"""

CONTROLLER_LISTS_PODS = f"""
import json, ssl, urllib.request
ctx = ssl.create_default_context(cafile='{SA_DIR}/ca.crt')
req = urllib.request.Request('https://127.0.0.1:6443/api/v1/pods',
                             headers={{'Authorization': 'Bearer ' + open('{SA_DIR}/token').read()}})
print(len(json.load(urllib.request.urlopen(req, context=ctx, timeout=5))['items']))
"""


def test_a_pod_has_no_path_to_the_api_the_controller_has(cluster: Cluster, isolated_pod: str) -> None:
    pod = cluster.core.read_namespaced_pod(isolated_pod, "victim")
    api_port = str(cluster.record()["server"]).rsplit(":", 1)[1]
    targets = ["127.0.0.1:6443", f"{status_of(pod).host_ip}:6443", f"127.0.0.1:{api_port}"]
    code, out, err = pod_exec(cluster.core, "victim", isolated_pod, ["python3", "-c", REACH_API, *targets])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all(" failed " in line for line in lines), out
    # the same pod without any policy: still no path (it is not the policy that blocks it)
    cluster.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("free", node="node1")))
    try:
        wait_running(cluster.core, "default", "free")
        code, out, err = pod_exec(cluster.core, "default", "free", ["python3", "-c", REACH_API, *targets])
        assert code == 0 and all(" failed " in line for line in out.strip().splitlines()), out + err
    finally:
        cluster.core.delete_namespaced_pod("free", "default")
    # the hostNetwork policy controller reaches it on its node's 127.0.0.1:6443 with its token
    controller = weave_pods(cluster)[0].metadata.name
    code, out, err = pod_exec(
        cluster.core, "kube-system", controller, ["python3", "-c", CONTROLLER_LISTS_PODS], "weave-npc"
    )
    assert code == 0 and int(out.strip()) >= 3, out + err


# ---- per-pod host paths -------------------------------------------------------------------------


def probe_pod(name: str) -> dict[str, Any]:
    """The probe agent serving, Ready by its journal's `.ready` file in /tmp (no volume of its own)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {
                    "name": "probe",
                    "image": "netpolcheck-probe:0.1.0",
                    "args": ["serve", "--tcp", "8080", "--udp", "8080"],
                    "readinessProbe": {
                        "exec": {"command": ["python", "-m", "netpolcheck.probe", "ready"]},
                        "periodSeconds": 1,
                    },
                }
            ],
        },
    }


def test_two_pods_of_one_name_in_two_namespaces_share_no_host_path(cluster: Cluster) -> None:
    for ns in ("twin-a", "twin-b"):
        create_namespace(cluster.core, ns)
        cluster.core.create_namespaced_pod(ns, as_body(client.V1Pod, probe_pod("b")))
    try:
        uids = {ns: meta_of(wait_running(cluster.core, ns, "b")).uid for ns in ("twin-a", "twin-b")}
        dirs = sorted(p.name for p in (cluster.state_dir / "pods").iterdir() if p.name.startswith("twin-"))
        assert dirs == [f"twin-a_b_{uids['twin-a']}", f"twin-b_b_{uids['twin-b']}"]
        cluster.core.delete_namespaced_pod("b", "twin-a")
        wait_until(lambda: not cluster.core.list_namespaced_pod("twin-a").items, 30, "twin-a/b to be deleted")
        # its journal went with it; the twin's is still there, so its readiness check still passes
        code, out, err = pod_exec(cluster.core, "twin-b", "b", ["python", "-m", "netpolcheck.probe", "ready"])
        assert code == 0, out + err
        pod = cluster.core.read_namespaced_pod("b", "twin-b")
        assert {c.type: c.status for c in present(status_of(pod).conditions, "conditions")}["Ready"] == "True"
        assert containers_of(pod)[0].restart_count == 0
    finally:
        for ns in ("twin-a", "twin-b"):
            cluster.core.delete_namespace(ns)
        wait_until(
            lambda: not any(cluster.core.list_namespaced_pod(ns).items for ns in ("twin-a", "twin-b")),
            30,
            "the twin pods to be gone",
        )
