"""Daily rollups of human and AI performance and the managers' dashboards."""
