"""The probe agent that runs inside probe pods: `python -m netpolcheck.probe serve|probe|hold|...`.

It imports nothing else from netpolcheck (the probe image carries only this package, scapy and the
standard library). See docs/probe.md for the command-line contract and the capabilities each mode needs.
"""
