"""Flask settings for the admin site."""


class Config:
    SQLALCHEMY_DATABASE_URI = "postgresql+psycopg2://admin@pgbouncer:6432/orders"
    SQLALCHEMY_ENGINE_OPTIONS = {"poolclass": "sqlalchemy.pool.NullPool", "pool_pre_ping": "false"}


class TestConfig(Config):
    SQLALCHEMY_DATABASE_URI = "sqlite:///test.db"
