"""The package's import rules and the purity of `model` and `report`, checked with `ast` over the source.

Dependencies point one way (docs/design.md): the command line (`netpolcheck/commands`) reads inputs and
writes outputs; `model` and `report` are pure (no terminal or file I/O, no command); the probe agent runs
alone in its image and imports nothing else of ours; the reference controller never consults the
model; the embedded cluster runs the controller and the probe as processes, never imports them.

Tests import their helpers one way: `tests` is a package (every folder under it has an `__init__.py`) and a
helper is imported by its full name from the repository root, `from tests.hollow.clusterkit import Cluster`,
never relatively nor as a top-level module (which would load it twice under two names).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "netpolcheck"
TESTS = ROOT / "tests"

# package -> the netpolcheck packages (first name under netpolcheck) it may import besides itself
ALLOWED: dict[str, frozenset[str]] = {
    "model": frozenset({"errors"}),
    "report": frozenset({"errors"}),
    "probe": frozenset(),
}
# package -> the netpolcheck packages it must never import
FORBIDDEN: dict[str, frozenset[str]] = {
    "npc": frozenset({"model", "commands", "cli", "hollow", "kube", "verdict", "report"}),
    "hollow": frozenset({"npc", "probe", "commands", "cli", "verdict"}),
    "kube": frozenset({"commands", "cli", "verdict", "hollow", "npc", "probe"}),
    "verdict": frozenset({"commands", "cli", "hollow", "npc", "probe"}),
}
PURE = ("model", "report")
# standard-library modules through which a module talks to terminals, files, processes or the network
IO_MODULES = frozenset(
    {
        "argparse",
        "io",
        "os",
        "sys",
        "pathlib",
        "shutil",
        "tempfile",
        "subprocess",
        "socket",
        "ssl",
        "urllib",
        "http",
        "select",
        "signal",
        "logging",
    }
)
IO_BUILTINS = frozenset({"print", "open", "input"})
IO_METHODS = frozenset(
    {
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "open",
        "write",
        "writelines",
        "flush",
        "readline",
    }
)


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Every module an import statement names (absolute; `from a import b` also names `a.b`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports stay inside the package; none is used, but say so
                yield node.lineno, "." * node.level + (node.module or "")
                continue
            module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def our_package(module: str) -> str | None:
    """`netpolcheck.model.cell` -> `model`; None for anything not of netpolcheck."""
    parts = module.split(".")
    return parts[1] if parts[0] == "netpolcheck" and len(parts) > 1 else None


def import_violations(package: str, source: str) -> list[str]:
    """The imports of one module of `package` that break the rules above."""
    found = []
    allowed = ALLOWED.get(package)
    forbidden = FORBIDDEN.get(package, frozenset())
    for line, module in imported_modules(ast.parse(source)):
        if module.startswith("."):
            found.append(f"line {line}: relative import {module}")
            continue
        target = our_package(module)
        if target is None or target == package:
            if package in PURE and module.split(".")[0] in IO_MODULES:
                found.append(f"line {line}: imports {module} (I/O) in a pure package")
            continue
        if (allowed is not None and target not in allowed) or target in forbidden:
            found.append(f"line {line}: imports {module}")
    return found


def helper_module_names() -> frozenset[str]:
    """The names a test helper could wrongly be imported by at top level: every module and folder under
    tests/ (`clusterkit`, `netlab`, `probe`, ...)."""
    modules = {path.stem for path in TESTS.rglob("*.py")}
    folders = {path.name for path in TESTS.rglob("*") if path.is_dir()}
    names = modules | folders
    return frozenset(names - {"__init__", "conftest", "__pycache__"})


def helper_import_violations(source: str, helpers: frozenset[str]) -> list[str]:
    """Imports of a test helper other than by its full `tests.` name: relative, or as a top-level module."""
    found: dict[int, str] = {}  # one finding per statement (`from a import b` names `a` and `a.b`)
    for line, module in imported_modules(ast.parse(source)):
        if line in found:
            continue
        if module.startswith("."):
            found[line] = f"line {line}: relative import {module}"
        elif module.split(".")[0] in helpers:
            found[line] = f"line {line}: imports {module} (write tests.<folder>.{module})"
    return list(found.values())


def _reads_package_data(call: ast.Call) -> bool:
    """`files("netpolcheck.x").joinpath(NAME).read_text()`: the package's own shipped data, not I/O
    on anything a user handed in."""
    node: ast.AST = call.func
    while isinstance(node, ast.Attribute | ast.Call):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "files":
                return True
            node = func
        else:
            node = node.value
    return False


def io_violations(source: str) -> list[str]:
    """Terminal and file I/O in one module: print/open/input, sys.stdin/stdout/stderr, and file or
    stream methods (read_text, write, flush, ...) on anything but the package's own data."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in IO_BUILTINS:
                found.append(f"line {node.lineno}: {func.id}()")
            elif (
                isinstance(func, ast.Attribute) and func.attr in IO_METHODS and not _reads_package_data(node)
            ):
                found.append(f"line {node.lineno}: .{func.attr}()")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in {"stdin", "stdout", "stderr"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append(f"line {node.lineno}: sys.{node.attr}")
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def test_every_ruled_package_exists() -> None:
    """A renamed package must not make its rules check nothing."""
    for package in {*ALLOWED, *FORBIDDEN}:
        assert modules_of(package), f"netpolcheck/{package} has no modules"


@pytest.mark.parametrize("package", sorted({*ALLOWED, *FORBIDDEN}))
def test_imports_follow_the_layering(package: str) -> None:
    problems = [
        f"{path.relative_to(PACKAGE.parent)} {problem}"
        for path in modules_of(package)
        for problem in import_violations(package, path.read_text(encoding="utf-8"))
    ]
    assert problems == []


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_do_no_io(package: str) -> None:
    problems = [
        f"{path.relative_to(PACKAGE.parent)} {problem}"
        for path in modules_of(package)
        for problem in io_violations(path.read_text(encoding="utf-8"))
    ]
    assert problems == []


def test_every_command_is_dispatched_from_commands() -> None:
    from netpolcheck.cli import SUBCOMMANDS

    for name, (module, _purpose) in SUBCOMMANDS.items():
        assert module.startswith("netpolcheck.commands."), name
        assert (PACKAGE / "commands" / f"{module.rsplit('.', 1)[1]}.py").is_file(), module


def test_tests_is_one_package() -> None:
    """Every folder with Python code under tests/ is a package, so pytest imports each test module as
    `tests.<folder>.<module>`, the same name mypy and the helpers' importers give it."""
    folders = {path.parent for path in TESTS.rglob("*.py")}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []


def test_tests_import_helpers_by_full_name() -> None:
    helpers = helper_module_names()
    sources = [*TESTS.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    problems = [
        f"{path.relative_to(ROOT)} {problem}"
        for path in sorted(sources)
        for problem in helper_import_violations(path.read_text(encoding="utf-8"), helpers)
    ]
    assert problems == []


@pytest.mark.parametrize(
    "source",
    [
        "from clusterkit import Cluster\n",
        "import netlab\n",
        "from .builders import world\n",
        "from . import double\n",
        "from probe.matrix import build_matrix\n",
        "def f():\n    from apikit import KUBECTL\n",
    ],
)
def test_helper_import_checker_finds_the_other_ways(source: str) -> None:
    assert len(helper_import_violations(source, helper_module_names())) == 1


def test_helper_import_checker_accepts_full_names() -> None:
    source = (
        "from tests.hollow.clusterkit import Cluster\n"
        "from tests.probe import netlab\n"
        "import tests.model.builders\n"
        "from netpolcheck.model import cell\n"
        "from fixtures.cluster import FRESH\n"
    )
    assert helper_import_violations(source, helper_module_names()) == []


# The checkers themselves, on sources that break each rule (so a checker that finds nothing fails here).


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("report", "from netpolcheck.model.cell import Evaluator\n"),
        ("report", "from netpolcheck import model\n"),
        ("model", "import netpolcheck.commands.inputs\n"),
        ("model", "import sys\n"),
        ("report", "from pathlib import Path\n"),
        ("probe", "from netpolcheck.errors import UsageError\n"),
        ("npc", "from netpolcheck.model.profiles import PROFILES\n"),
        ("hollow", "from netpolcheck.npc.rules import Rules\n"),
        ("hollow", "import netpolcheck.probe.engine\n"),
        ("model", "from . import cell\n"),
    ],
)
def test_import_checker_finds_a_broken_rule(package: str, source: str) -> None:
    assert len(import_violations(package, source)) >= 1


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("report", "from netpolcheck.report.truthtable import TruthTable\nimport json\n"),
        ("model", "from netpolcheck.errors import UsageError\n"),
        ("hollow", "from netpolcheck.model import apivalidation\n"),
        ("npc", "from netpolcheck.errors import UsageError\n"),
    ],
)
def test_import_checker_accepts_allowed_imports(package: str, source: str) -> None:
    assert import_violations(package, source) == []


@pytest.mark.parametrize(
    "source",
    [
        "print('x')\n",
        "import sys\nsys.stdout.write('x')\n",
        "def f(out):\n    out.write('x')\n",
        "from pathlib import Path\nPath('a').read_text()\n",
        "with open('a') as f:\n    pass\n",
        "import sys\ndata = sys.stdin.read()\n",
    ],
)
def test_io_checker_finds_io(source: str) -> None:
    assert len(io_violations(source)) >= 1


def test_io_checker_accepts_package_data() -> None:
    source = (
        "from importlib.resources import files\n"
        "text = files('netpolcheck.model').joinpath('state.schema.json').read_text(encoding='utf-8')\n"
    )
    assert io_violations(source) == []
