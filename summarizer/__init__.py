"""Activity to a Chinese digest; knows nothing of chat platforms."""
