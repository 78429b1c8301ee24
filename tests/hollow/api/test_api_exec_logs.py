"""Exec over websocket (kubernetes Python client and kubectl) and pod logs, with real processes."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.hollow.api.apikit import Cluster, pod_body
from tests.hollow.kubetyped import as_body


@pytest.fixture
def pod(core: client.CoreV1Api) -> str:
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("box")))
    return "box"


def run(core: client.CoreV1Api, command: list[str], stdin: str | None = None) -> tuple[str, str, int | None]:
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "box",
        "default",
        command=command,
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    try:
        if stdin is not None:
            resp.write_stdin(stdin)
            resp.close_channel(0)  # v5: stdin EOF
        resp.run_forever(timeout=10)
        return resp.read_stdout(), resp.read_stderr(), resp.returncode
    finally:
        resp.close()
        resp.sock.shutdown()  # websocket-client leaves the socket open when the server closed first


def test_python_client_exec_stdout_stderr_and_exit_codes(core: client.CoreV1Api, pod: str) -> None:
    assert run(core, ["sh", "-c", "echo out; echo err >&2"]) == ("out\n", "err\n", 0)
    assert run(core, ["sh", "-c", "echo partial; exit 3"]) == ("partial\n", "", 3)


def test_python_client_exec_with_stdin(core: client.CoreV1Api, pod: str) -> None:
    out, _, code = run(core, ["sh", "-c", "tr a-z A-Z; exit 7"], stdin="hello hollow\n")
    assert (out, code) == ("HELLO HOLLOW\n", 7)


def test_large_output_arrives_whole(core: client.CoreV1Api, pod: str) -> None:
    out, _, code = run(core, ["python3", "-c", "print('x' * 300000)"])
    assert code == 0 and out == "x" * 300000 + "\n"


def test_runtime_refusal_comes_back_as_failure_status(core: client.CoreV1Api, cluster: Cluster) -> None:
    core.create_namespaced_pod(
        "default",
        as_body(
            client.V1Pod,
            {
                "metadata": {"name": "two"},
                "spec": {"containers": [{"name": "a", "image": "i:1"}, {"name": "missing", "image": "i:1"}]},
            },
        ),
    )
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        "two",
        "default",
        container="missing",
        command=["true"],
        stdout=True,
        stderr=True,
        _preload_content=False,
    )
    resp.run_forever(timeout=10)
    error = resp.read_channel(3)
    resp.close()
    resp.sock.shutdown()
    assert '"status": "Failure"' in error and "is not running" in error
    with pytest.raises(client.ApiException) as err:  # two containers and none named: 400 before upgrade
        stream(core.connect_get_namespaced_pod_exec, "two", "default", command=["true"], stdout=True)
    assert "400" in str(err.value.reason)  # the client reports a failed handshake with status 0


def test_kubectl_exec_output_stdin_and_exit_code(cluster: Cluster, pod: str) -> None:
    result = cluster.kubectl("exec", "box", "--", "sh", "-c", "echo from-kubectl; echo to-stderr >&2")
    assert (result.returncode, result.stdout, result.stderr) == (0, "from-kubectl\n", "to-stderr\n")
    result = cluster.kubectl("exec", "box", "--", "sh", "-c", "exit 5")
    assert result.returncode == 5, result.stderr
    result = cluster.kubectl("exec", "-i", "box", "--", "sh", "-c", "cat; echo done", input_text="piped\n")
    assert (result.returncode, result.stdout) == (0, "piped\ndone\n"), result.stderr


def test_logs_through_client_and_kubectl(cluster: Cluster, core: client.CoreV1Api, pod: str) -> None:
    cluster.runtime.write_log("default", "box", "c", "one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("box", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("box", "default", tail_lines=1) == "three\n"
    result = cluster.kubectl("logs", "box", "--tail=2")
    assert (result.returncode, result.stdout) == (0, "two\nthree\n"), result.stderr
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod_log("box", "default", previous=True)
    assert err.value.status == 400


def test_kubectl_logs_follow_streams_new_lines(cluster: Cluster, core: client.CoreV1Api, pod: str) -> None:
    import subprocess

    from tests.hollow.api.apikit import KUBECTL

    cluster.runtime.write_log("default", "box", "c", "first\n")
    proc = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "box"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "first\n"
        cluster.runtime.write_log("default", "box", "c", "second\n")
        assert proc.stdout.readline() == "second\n"
        started = time.monotonic()
        core.delete_namespaced_pod("box", "default")  # the follow ends when the pod is gone
        assert proc.wait(timeout=10) == 0 and time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_parallel_exec_sessions_keep_their_own_output_and_codes(cluster: Cluster, pod: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[str, str, int | None]:
        own = client.CoreV1Api(cluster.new_api_client())
        return run(own, ["sh", "-c", f"echo out-{i}; echo err-{i} >&2; exit {i % 4}"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert results == [(f"out-{i}\n", f"err-{i}\n", i % 4) for i in range(20)]
