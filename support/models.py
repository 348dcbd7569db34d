"""Models of support; each model's docstring defines its domain term."""
