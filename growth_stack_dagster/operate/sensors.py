"""The run-failure sensor: a thin wrapper that posts `alerts.run_failure_message` to the configured
webhook (see `growth_stack_dagster.operate.alerts`)."""

import os

import dagster as dg

from growth_stack_dagster.operate import alerts


@dg.run_failure_sensor(name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING,
                       minimum_interval_seconds=30,
                       description="Posts a signed alert (Standard Webhooks) to $GROWTH_STACK_ALERT_WEBHOOK_URL "
                                   "when a run fails; does nothing while that is unset.")
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
    """Alert on one failed run; a receiver that stays down fails the tick (shown in the UI)."""
    settings = alerts.alert_settings()
    if settings is None:
        return dg.SkipReason(f"no alert webhook: set {alerts.URL_ENV} and {alerts.SECRET_ENV} to get alerts")
    url, secret = settings
    run = context.dagster_run
    failed = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    error = context.failure_event.message or "the run failed"
    message = alerts.run_failure_message(run.run_id, run.job_name, error, failed,
                                         ui_url=os.environ.get(alerts.UI_ENV, alerts.DEFAULT_UI_URL))
    status = alerts.post_alert(url, secret, message)
    context.log.info(f"alert for run {run.run_id} accepted with HTTP {status}")
    return None
