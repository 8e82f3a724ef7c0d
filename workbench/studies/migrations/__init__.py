"""Alembic migrations of the study database, run programmatically by `workbench.studies.store` on first start."""
