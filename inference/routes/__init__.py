"""The HTTP endpoints: scoring (API key) and service information (open)."""
