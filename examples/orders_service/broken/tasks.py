"""Celery tasks of the orders service."""

from celery import Celery
from celery.signals import worker_process_init
from sqlalchemy import text
from sqlalchemy.orm import Session

from db import reporting

celery = Celery("orders")

# One session for every task this worker process runs.
session = Session(reporting)


@worker_process_init.connect
def reset_connections(**kwargs):
    # Each prefork child must not reuse the parent's connections.
    reporting.dispose()


@celery.task
def nightly_totals():
    return session.execute(text("select sum(total) from orders")).scalar()
