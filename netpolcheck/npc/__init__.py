"""netpolcheck.npc"""
