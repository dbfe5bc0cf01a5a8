"""gunicorn settings for the web application."""

bind = "0.0.0.0:8000"
workers = 4
# Load the application once, in the master, so workers fork with it ready.
preload_app = True
