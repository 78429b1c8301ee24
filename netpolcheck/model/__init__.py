"""NetworkPolicy semantics and implementation profiles: pure functions, no I/O, no Kubernetes client.

Typical use::

    state = parse_state(json.loads(text))          # validates; StateError (a UsageError) on bad input
    matrix = ExpectedMatrix(state, get_profile("weave-2.8.1"))
    matrix.allowed("x/a", "y/b")                    # bool, from bitsets
    explain(state, profile, "x/a", "y/b", Probe(80)).text()   # the full story of one cell
    expected_results(state, profile)                # the `netpolcheck expect` JSON document
"""

from netpolcheck.model.cell import CellVerdict, Evaluator
from netpolcheck.model.deviations import DeviationFinder, explaining_deviations
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.errors import StateError
from netpolcheck.model.explain import Explanation, explain
from netpolcheck.model.objects import External, Namespace, Pod, Probe
from netpolcheck.model.profiles import PROFILES, SPEC, Deviation, Profile, get_profile
from netpolcheck.model.results import expected_results
from netpolcheck.model.state import State, parse_state

__all__ = [
    "PROFILES",
    "SPEC",
    "CellVerdict",
    "Deviation",
    "DeviationFinder",
    "Evaluator",
    "ExpectedMatrix",
    "Explanation",
    "External",
    "Namespace",
    "Pod",
    "Probe",
    "Profile",
    "State",
    "StateError",
    "expected_results",
    "explain",
    "explaining_deviations",
    "get_profile",
    "parse_state",
]
