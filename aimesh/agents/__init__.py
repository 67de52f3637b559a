"""Specialist agents: each a tool-calling agent over the tools of one ML model."""
