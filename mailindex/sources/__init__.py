"""Mail sources: each format reads mail as bytes and never parses it."""
