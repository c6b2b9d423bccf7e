"""The Celery app bench/peers_bench.py measures: one no-op task, Redis as broker and result
backend (the private redis-server the bench starts, named by PEERS_CELERY_URL)."""
import os

from celery import Celery

app = Celery("peers_celery", broker=os.environ["PEERS_CELERY_URL"], backend=os.environ["PEERS_CELERY_URL"])
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_prefetch_multiplier=4, broker_connection_retry_on_startup=True)


@app.task
def noop(x):
    return x
