"""Flask settings for the admin site."""

from sqlalchemy.pool import NullPool


class Config:
    SQLALCHEMY_DATABASE_URI = "postgresql+psycopg2://admin@pgbouncer:6432/orders"
    SQLALCHEMY_ENGINE_OPTIONS = {"poolclass": NullPool}


class TestConfig(Config):
    SQLALCHEMY_DATABASE_URI = "sqlite:///test.db"
