"""Triage: the officers' queue, opening a tip, every action on it, and the categories."""
