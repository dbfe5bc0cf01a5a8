"""flake8-pooling: static checks for SQLAlchemy connection-pool configuration."""

__version__ = "0.1.0"
