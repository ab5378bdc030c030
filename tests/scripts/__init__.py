"""Helpers for the reliability and security suite: tiny servers and victim processes."""
