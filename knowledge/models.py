"""Models of knowledge base; each model's docstring defines its domain term."""
