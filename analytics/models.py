"""Models of analytics; each model's docstring defines its domain term."""
