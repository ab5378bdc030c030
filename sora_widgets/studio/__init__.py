"""studio layer."""
