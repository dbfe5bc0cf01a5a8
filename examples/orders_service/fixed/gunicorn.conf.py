"""gunicorn settings for the web application."""

bind = "0.0.0.0:8000"
workers = 4
# Load the application once, in the master, so workers fork with it ready.
preload_app = True


def post_fork(server, worker):
    # Workers inherit the master's engines: drop their pooled connections without closing
    # them, which would break the master's.
    from db import async_engine, engine, reporting

    for inherited in (engine, async_engine.sync_engine, reporting):
        inherited.dispose(close=False)
