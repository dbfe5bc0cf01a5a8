"""Database access for the orders service."""

import os

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql+psycopg2://orders@pgbouncer:6432/orders")

# The web application's engine: a QueuePool in front of PgBouncer, no liveness check.
engine = create_engine(DATABASE_URL, pool_size=10, max_overflow=20)

# The async workers talk to the same PgBouncer through asyncpg.
async_engine = create_async_engine(
    "postgresql+asyncpg://orders@pgbouncer:6432/orders",
    pool_size=5,
    pool_pre_ping=True,
)

# The reporting replica, configured from the environment as strings.
reporting = create_engine(
    "postgresql+psycopg2://reports@replica.internal:5432/orders",
    pool_size=os.environ.get("REPORTING_POOL_SIZE", "5"),
    pool_timeout="30",
    autocommit=True,
)


def count_orders(customer_id):
    # A new engine, and a new pool, for every request.
    per_request = create_engine(DATABASE_URL)
    with per_request.connect() as connection:
        query = text("select count(*) from orders where customer_id = :id")
        return connection.execute(query, {"id": customer_id}).scalar()
