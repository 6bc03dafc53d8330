"""Alembic environment: formtool passes its own open connection (see store.open_store)."""

from alembic import context

from formtool.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only formtool.store runs these migrations
    raise RuntimeError("Run migrations through formtool.store.open_store().")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
