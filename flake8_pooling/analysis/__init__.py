"""Reading code: from source text to the facts rules reason about."""
