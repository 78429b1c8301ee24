"""`netpolcheck expect --format table`: streamed from the bitsets, differences from spec marked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.model.builders import netpol, sel, world

NAMED_PORT_POLICY = netpol(
    "x/named",
    {
        "podSelector": sel(pod="a"),
        "ingress": [{"from": [{"podSelector": sel(pod="b")}], "ports": [{"port": "http"}]}],
    },
)


def _table(path: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "expect", str(path), "--format", "table", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _row(lines: list[str], name: str) -> list[str]:
    header = next(line for line in lines if line.startswith("from \\ to"))
    columns = header.split()[3:]
    line = next(line for line in lines if line.startswith(name + " "))
    width = max(len(c) for c in columns)
    start = len(header) - len(columns) * (width + 1) + 1
    return [line[start + i * (width + 1) + width - 1] for i in range(len(columns))]


def test_cells_that_differ_from_spec_are_marked_and_the_legend_says_why(tmp_path: Path) -> None:
    """A skipped named-port policy must not look like no policy: its cells are marked and explained."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(world([NAMED_PORT_POLICY])))
    spec = _table(path)
    weave = _table(path, "--profile", "weave-2.8.1")
    assert _row(spec, "x/c")[0] == "X"  # x/c -> x/a: spec denies (only x/b may)
    assert _row(weave, "x/c")[0] == "+"  # weave-2.8.1 skips the policy: allowed, marked
    assert _row(weave, "x/b")[0] == "."  # allowed by both: no mark
    assert "(. allowed   X denied   - self)" in weave
    assert any(
        line.startswith("(+ allowed under weave-2.8.1 where the Kubernetes spec denies (7 cells)")
        for line in weave
    )
    assert any(
        line.startswith("  named-port-policy-skipped (7 cells): a policy with a named port") for line in weave
    )
    assert not any(line.startswith("(+") for line in spec)


def test_blank_cells_are_explained_and_externals_do_not_meet(tmp_path: Path) -> None:
    doc = world(
        probes=[{"port": "http"}],
        externals=[{"name": "world", "ip": "203.0.113.7"}, {"name": "zone", "ip": "198.51.100.1"}],
    )
    doc["pods"][0]["ports"] = []  # x/a has no port named http
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    lines = _table(path)
    assert lines[0] == "expected TCP http:"
    world_row = _row(lines, "world")
    header = lines[1].split()[3:]
    assert world_row[header.index("zone")] == " "  # external -> external: left out
    assert world_row[header.index("x/a")] == " "  # x/a is not probed
    assert world_row[header.index("x/b")] == "."
    assert (
        "(blank column: not probed, the destination has no TCP port named 'http' (3 destinations))" in lines
    )
    assert "(blank between two externals: traffic outside the cluster, which policies never see)" in lines


def test_a_big_table_is_streamed_in_little_memory(tmp_path: Path) -> None:
    """1,000 pods: the table used to be built from the whole document (757 MB); now it is streamed."""
    pods = 1000
    doc = {
        "namespaces": [{"name": f"ns{i}", "labels": {"team": f"t{i % 3}"}} for i in range(10)],
        "pods": [
            {
                "namespace": f"ns{i % 10}",
                "name": f"p{i}",
                "labels": {"app": f"a{i % 7}"},
                "ip": f"10.1.{i // 256}.{i % 256}",
            }
            for i in range(pods)
        ],
        "policies": [
            netpol(
                f"ns{i % 10}/p{i}",
                {
                    "podSelector": sel(app=f"a{i % 7}"),
                    "ingress": [{"from": [{"namespaceSelector": sel(team=f"t{i % 3}")}]}],
                },
            )
            for i in range(30)
        ],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    out, err, peak = tmp_path / "table.txt", tmp_path / "stderr.txt", tmp_path / "peak.txt"
    # The command's own peak: VmHWM belongs to the process's memory map, which exec replaces, so the test
    # process's size at fork time does not count (ru_maxrss of a child does keep it across exec).
    run_and_report_peak = (
        "import sys\n"
        "from pathlib import Path\n"
        "from netpolcheck.cli import main\n"
        "try:\n"
        "    code = main(sys.argv[2:])\n"
        "finally:\n"
        "    status = Path('/proc/self/status').read_text().splitlines()\n"
        "    Path(sys.argv[1]).write_text(next(x for x in status if x.startswith('VmHWM:')))\n"
        "sys.exit(code)\n"
    )
    with out.open("wb") as sink, err.open("wb") as errors:
        child = subprocess.run(
            [sys.executable, "-c", run_and_report_peak, str(peak), "expect", str(path), "--format", "table"],
            stdout=sink,
            stderr=errors,
            timeout=300,
            check=False,
        )
    assert child.returncode == 0, err.read_text()
    with out.open() as text:
        lines = sum(1 for _ in text)
    assert lines == 2 + pods + 1  # title, header, one line per pod, legend
    peak_kib = int(peak.read_text().split()[1])  # "VmHWM:   22556 kB"
    assert peak_kib < 200 * 1024, f"peak {peak_kib} KiB"


def test_a_table_too_big_to_read_is_refused_before_it_is_computed(tmp_path: Path) -> None:
    pods = 10_001
    doc = {
        "namespaces": [{"name": "x"}],
        "pods": [
            {"namespace": "x", "name": f"p{i}", "ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"}
            for i in range(pods)
        ],
    }
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "expect", str(path), "--format", "table"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "netpolcheck: error: --format table: 10,001 endpoints make a table of 100,020,001 cells per "
        "probe, more than the 10,000 x 10,000 a table is printed for; use --format json (streamed) or "
        "--explain FROM TO"
    ]
