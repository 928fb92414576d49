"""Running insiderwatch beyond one process: a local Celery cluster for the daily DAG."""
