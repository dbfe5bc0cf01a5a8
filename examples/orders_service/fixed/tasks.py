"""Celery tasks of the orders service."""

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from db import reporting

celery = Celery("orders")

# A factory: each task opens its own session.
ReportingSession = sessionmaker(bind=reporting)


@worker_process_init.connect
def reset_connections(**kwargs):
    # Drop the parent's pooled connections without closing them.
    reporting.dispose(close=False)


@celery.task
def nightly_totals():
    with ReportingSession() as session:
        return session.execute(text("select sum(total) from orders")).scalar()
