"""netpolcheck.hollow"""
