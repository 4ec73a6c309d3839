"""_boot/strategies"""
