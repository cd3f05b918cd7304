"""Chat platforms and push targets: one splitter, one pacing gate, senders and adapters."""
