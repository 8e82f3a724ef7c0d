"""User studies in the workbench: study files (tasks, conditions, assignment, blinded comparisons,
questionnaires), a recorder that writes every user action of every tab to a database, the participant and
researcher flows, and exports (CSV, JSONL, Parquet, DPO preference pairs).

Importing this package is cheap: SQLAlchemy and Alembic are imported on first use of the store.
"""
