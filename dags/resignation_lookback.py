"""resignation_lookback: HR triggers it when someone resigns (METI item 26).

No schedule. The run configuration is {user, notice_date, last_day (optional), months (default
6)}; it is validated first (a user that is not a plain roster id, dates out of order or format,
months out of range fail with the reason, and nothing is written), then the lookback's tables
go to ``<store>/lookbacks/<user>_<notice_date>/``. Paths come from the INSIDERWATCH_LOGS and
INSIDERWATCH_STORE environment variables (or the params of the same names).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Param, dag, task

TZ = "Asia/Tokyo"


@dag(
    dag_id="resignation_lookback",
    schedule=None,
    start_date=pendulum.datetime(2024, 4, 1, tz=TZ),
    catchup=False,
    tags=["insiderwatch", "leavers"],
    params={
        "user": Param("", type="string"),
        "notice_date": Param("", type="string"),
        "last_day": Param("", type="string"),
        "months": Param(6, type="integer"),
        "logs": Param(os.environ.get("INSIDERWATCH_LOGS", "sample_logs"), type="string"),
        "store": Param(os.environ.get("INSIDERWATCH_STORE", "store"), type="string"),
    },
    doc_md=__doc__,
)
def resignation_lookback():
    @task
    def validate(params=None) -> dict:
        from insiderwatch.tasks import lookback_request

        return lookback_request(params["store"], dict(params))

    @task
    def report(request: dict, params=None) -> dict:
        from insiderwatch.tasks import lookback_report

        return lookback_report(params["logs"], params["store"], request)

    report(validate())


DAG = resignation_lookback()
