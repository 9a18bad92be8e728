"""ponder: spend LLM compute per prompt."""

__version__ = "0.1.0"
