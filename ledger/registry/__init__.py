"""Datasets on chain: FAIR metadata, registration and versions in DataRegistry, the catalog."""
