"""What every chat platform shares: splitting Markdown into messages (textsplit)."""
