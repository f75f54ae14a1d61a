"""Personalized music emotion recognition with consensus-entropy active learning."""

__version__ = "0.1.0"
