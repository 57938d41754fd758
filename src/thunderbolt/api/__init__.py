"""API types: the pydantic models every CRD schema is generated from."""
