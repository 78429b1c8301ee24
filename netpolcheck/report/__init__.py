"""Reports: truth tables (expected / observed / difference) and cell comparison.

Independent of Kubernetes and of the probe code; later issues add the certification report here.
"""
