"""netpolcheck.kube"""
