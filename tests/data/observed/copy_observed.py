"""Copy the weave-npc 2.8.1 observations the model tests need from shared/reference, minified.

Run from the repository root: `.venv/bin/python tests/data/observed/copy_observed.py [SHARED_DIR]`.
CI gets shared/ read-only and may not have it at all, so the copies live here. Observed
matrices (`matrix.json`, `results.json`) are stored gzipped; states and steps as minified JSON.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _write(target: Path, data: object, compress: bool = False) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    if compress:
        target.with_suffix(target.suffix + ".gz").write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        target.write_text(text + "\n", encoding="utf-8")


def main(shared: Path) -> int:
    source = shared / "reference" / "weave-npc-2.8.1-observed"
    for scenario in sorted(p for p in source.iterdir() if p.is_dir()):
        if (scenario / "state.json").exists() and (scenario / "matrix.json").exists():
            for name in ("state.json", "matrix.json"):
                _write(
                    HERE / scenario.name / name,
                    json.loads((scenario / name).read_text()),
                    compress=name == "matrix.json",
                )
    changes = source / "changes-3node"
    _write(HERE / "changes-3node" / "steps.json", json.loads((changes / "steps.json").read_text()))
    _write(
        HERE / "changes-3node" / "results.json",
        json.loads((changes / "results.json").read_text()),
        compress=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared")))
