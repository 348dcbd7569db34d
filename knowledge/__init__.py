"""Help-center categories and articles, their embedded chunks, hybrid search and article metrics."""
