"""Models of integrations; each model's docstring defines its domain term."""
