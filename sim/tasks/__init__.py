"""Versioned task files (`<task>_v<N>.py`), one Gymnasium env class each, on `tasks.base`."""
