"""Private computation: algorithm catalog, sandbox, differential privacy, MPC."""
