"""Models of feedback; each model's docstring defines its domain term."""
