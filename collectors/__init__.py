"""GitHub activity of one calendar day; knows nothing of models or chats."""
