"""Alembic's environment for Kaon: migrations run on the connection `kaon.store.migrations.migrate` hands over."""

from alembic import context

from kaon.store.migrations import LOCK_KEY, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True,
                  transaction_per_migration=False)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # One migrator at a time (several processes may start together); the others then find nothing to do.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
    context.run_migrations()
