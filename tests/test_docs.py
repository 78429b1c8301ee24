"""Citations stay inside the repository: no pointer to files outside the clone, every cited docs page
and anchor exists, and every deviation of the model names its own section of docs/weave-facts.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from netpolcheck.model.profiles import WEAVE_DEVIATIONS, Deviation

REPO = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
# pointers to the material the project was started from, which is not part of the clone
OUTSIDE = re.compile(
    r"DESIGN\.md|weave-npc\.md|\.\./shared|/work/|shared/reference|weave-npc-2\.8\.1-observed"
)
CITATION = re.compile(r"(?:docs/)?\b([a-z][a-z0-9-]*\.md)#([A-Za-z0-9_-]+)")
ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = []
    for name in names:
        path = REPO / name
        if not path.is_file() or path == THIS or (name.startswith("tests/data/") and path.suffix != ".md"):
            continue
        if path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".ini", ".json", ".txt", ".cfg", ""}:
            files.append(path)
    return files


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = page.read_text()
    found = set(ANCHOR.findall(text))
    found |= {slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)}
    return found


def test_nothing_cites_files_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line) and "gitdir:" not in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_every_cited_docs_anchor_exists() -> None:
    pages = {p.name: anchors(p) for p in (REPO / "docs").glob("*.md")}
    missing = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            cited = CITATION.findall(line)
            if path.parent == REPO / "docs":
                cited += [(path.name, anchor) for anchor in re.findall(r"\]\(#([^)]+)\)", line)]
            for page, anchor in cited:
                if page in pages and anchor not in pages[page]:
                    missing.append(f"{path.relative_to(REPO)}:{number}: {page}#{anchor}")
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("deviation", WEAVE_DEVIATIONS, ids=lambda d: d.id)
def test_each_deviation_cites_its_own_section_and_real_observations(deviation: Deviation) -> None:
    assert deviation.provenance.startswith(f"docs/weave-facts.md#{deviation.id}")
    assert deviation.id in anchors(REPO / "docs" / "weave-facts.md")
    for cited in re.findall(r"tests/data/[\w./-]+", deviation.provenance):
        assert (REPO / cited).exists(), cited
