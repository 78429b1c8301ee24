"""netpolcheck.probe"""
