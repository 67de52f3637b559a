"""Alembic environment.

Runs on the connection that :meth:`aimesh.store.database.Database.migrate` passes in
``config.attributes["connection"]``.
"""

from alembic import context

from aimesh.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
