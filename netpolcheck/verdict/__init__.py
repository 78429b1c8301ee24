"""The verdict engine: cases as data (steps + checks), expected (model) vs observed (probes) until
converged, convergence timing, documented deviations as strict expected failures, negative control.

It reaches a cluster only through `driver.Driver`; `kubedriver` implements that over `netpolcheck.kube`.
"""
