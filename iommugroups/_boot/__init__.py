"""_boot"""
