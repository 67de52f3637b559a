"""aimesh: an LLM-driven agent mesh for Managed Service Providers."""

__version__ = "0.1.0"
