"""netpolcheck: a conformance suite for NetworkPolicy enforcement by Weave Net."""

__version__ = "0.1.0"
