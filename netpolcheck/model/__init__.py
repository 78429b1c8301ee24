"""netpolcheck.model"""
