"""Database access for the orders service."""

import os

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg2://orders@pgbouncer:6432/orders")

# PgBouncer pools server connections: no second pool in the application.
engine = create_engine(DATABASE_URL, poolclass=NullPool)

# asyncpg's prepared statements do not survive transaction pooling.
async_engine = create_async_engine(
    "postgresql+asyncpg://orders@pgbouncer:6432/orders",
    poolclass=NullPool,
    connect_args={"statement_cache_size": 0},
)

# The reporting replica: numbers are numbers, autocommit is an isolation level.
reporting = create_engine(
    "postgresql+psycopg2://reports@replica.internal:5432/orders",
    pool_size=int(os.environ.get("REPORTING_POOL_SIZE", "5")),
    pool_timeout=30,
    isolation_level="AUTOCOMMIT",
)


def count_orders(customer_id):
    # One engine per process, shared by every request.
    with engine.connect() as connection:
        query = text("select count(*) from orders where customer_id = :id")
        return connection.execute(query, {"id": customer_id}).scalar()
