"""netpolcheck.report"""
