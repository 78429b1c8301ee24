"""`netpolcheck hollow up|down|status`: the embedded cluster's command. Its parser and actions live
with the cluster (`netpolcheck/hollow/cli.py`, which needs the cluster's own modules); it is
registered here like every other command."""

from netpolcheck.hollow.cli import register

__all__ = ["register"]
