"""agentnb"""
