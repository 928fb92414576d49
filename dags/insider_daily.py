"""insider_daily: yesterday's logs to ranked alerts, every morning at 06:00 Asia/Tokyo.

ingest → quality gate → features → detection over shards of people → scoring → alerts →
leavers list (starting the lookback of anyone newly on notice) → reports (security team, each
supervisor; the inbound digest at month and quarter end) → send (by SMTP when the site config
enables it).

Detection is mapped over ``shards`` groups of people (dynamic task mapping), so a Celery
deployment spreads it over its workers: ``baselines`` per shard → ``fit_models`` once (the
model kept by the retraining day's run, or fitted on every shard's training rows) →
``detect`` (rules and model scores) per shard → ``scoring``
ranks everyone under one review budget. Any number of shards gives the same alerts.

Each task is one call into ``insiderwatch.tasks`` and works on its own day: the local day
before the run's logical date (logs of a day are complete once it is over). Paths and the
shard count come from the run's params, which default to the INSIDERWATCH_LOGS /
INSIDERWATCH_STORE / INSIDERWATCH_DB / INSIDERWATCH_FORMAT / INSIDERWATCH_SHARDS environment
variables.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

TZ = "Asia/Tokyo"


def _scored_day() -> str:
    """The day this run works on: the local day before the logical date."""
    logical = get_current_context()["logical_date"]
    return pendulum.instance(logical).in_timezone(TZ).subtract(days=1).date().isoformat()


@dag(
    dag_id="insider_daily",
    schedule=CronTriggerTimetable("0 6 * * *", timezone=TZ),
    start_date=pendulum.datetime(2024, 4, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    tags=["insiderwatch"],
    params={
        "logs": Param(os.environ.get("INSIDERWATCH_LOGS", "sample_logs"), type="string"),
        "store": Param(os.environ.get("INSIDERWATCH_STORE", "store"), type="string"),
        "db": Param(os.environ.get("INSIDERWATCH_DB", ""), type="string"),
        "format": Param(
            os.environ.get("INSIDERWATCH_FORMAT", "auto"),
            type="string",
            enum=["auto", "canonical", "cert", "m365"],
        ),
        "shards": Param(int(os.environ.get("INSIDERWATCH_SHARDS", "2")), type="integer", minimum=1),
    },
    doc_md=__doc__,
)
def insider_daily():
    @task
    def ingest(params=None) -> dict:
        from insiderwatch.tasks import ingest_day

        return ingest_day(
            params["logs"], params["store"], params["db"] or None, _scored_day(), params["format"]
        )

    @task
    def quality_gate(summary: dict) -> dict:
        from insiderwatch.tasks import check_quality

        return check_quality(summary)

    @task
    def features(summary: dict, params=None) -> dict:
        from insiderwatch.tasks import features_day

        return features_day(params["logs"], params["store"], summary["day"])

    @task
    def plan(built: dict, params=None) -> list[dict]:
        from insiderwatch.tasks import plan_shards

        return plan_shards(built["day"], params["shards"])

    @task
    def baselines(spec: dict, params=None) -> dict:
        from insiderwatch.tasks import baselines_day

        return baselines_day(params["store"], spec)

    @task
    def fit_models(framed: list[dict], params=None) -> dict:
        from insiderwatch.tasks import fit_models_day

        return fit_models_day(params["store"], framed[0]["day"], len(framed))

    @task
    def detect(spec: dict, fitted: dict, params=None) -> dict:
        from insiderwatch.tasks import detect_day

        return detect_day(params["logs"], params["store"], spec)

    @task
    def scoring(found: list[dict], params=None) -> dict:
        from insiderwatch.tasks import score_day

        return score_day(params["store"], found[0]["day"], len(found))

    @task
    def alerts(ranked: dict, params=None) -> dict:
        from insiderwatch.tasks import publish_day

        return publish_day(params["store"], params["db"] or None, ranked["day"])

    @task
    def leavers(published: dict, params=None) -> dict:
        from insiderwatch.tasks import leavers_day

        return leavers_day(params["logs"], params["store"], params["db"] or None, published["day"])

    @task
    def reports(listed: dict, params=None) -> dict:
        from insiderwatch.tasks import reports_day

        return reports_day(params["logs"], params["store"], params["db"] or None, listed["day"])

    @task
    def send(written: dict, params=None) -> dict:
        from insiderwatch.tasks import send_day

        return send_day(params["logs"], params["store"], params["db"] or None, written["folder"])

    shards = plan(features(quality_gate(ingest())))
    framed = baselines.expand(spec=shards)
    found = detect.partial(fitted=fit_models(framed)).expand(spec=shards)
    send(reports(leavers(alerts(scoring(found)))))


DAG = insider_daily()
