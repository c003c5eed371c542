"""One Dagster asset per declared sync, a thin wrapper over `activation.engine`.

Key `destinations/<destination>/<object>/<sync>`, group `activation`, kinds naming the destination,
downstream of the sync's dbt model: the graph reads API table -> staging -> marts -> sync_* model ->
destination. Each asset runs on its declared cron or when its model updates, carries two checks
(rejection rate, staleness against the model) and a freshness policy, and is retried by a RetryPolicy
when the destination stays unavailable.
"""

import datetime as dt
import json

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from growth_stack_dagster.activation import journal
from growth_stack_dagster.activation.destinations.base import SyncSpec

GROUP = "activation"
DEFAULT_MAX_REJECTION_RATE = 0.05
# Destinations that stay down are retried by Dagster, with growing pauses, before the run fails.
SYNC_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL,
                                   jitter=dg.Jitter.PLUS_MINUS)


class SyncRunConfig(dg.Config):
    """Run config of a sync asset."""

    dry_run: bool = False  # plan only: counts and sample requests, nothing sent, no materialization
    full_resync: bool = False  # send every row, whatever the destination accepted before


def sync_asset_key(spec: SyncSpec) -> dg.AssetKey:
    """`destinations/<destination>/<object>/<sync name>`."""
    return dg.AssetKey(["destinations", spec.destination, spec.object, spec.name])


def automation_for(spec: SyncSpec) -> dg.AutomationCondition:
    """Eager when the model updates, else on the declared cron (UTC)."""
    if spec.trigger == "on_model_update":
        return dg.AutomationCondition.eager()
    return dg.AutomationCondition.on_cron(spec.trigger)


def latest_run(spec: SyncSpec) -> dict | None:
    """The sync's last finished run in `activation_state.runs` (read-only), or None."""
    from growth_stack_dagster import config
    from growth_stack_dagster.activation import state

    warehouse = config.warehouse_path()
    if not warehouse.exists():
        return None
    with state.connect(warehouse, read_only=True) as con:
        if not state.state_exists(con):
            return None
        cursor = con.execute(f"select * from {state.SCHEMA}.runs where sync = ? order by finished_at desc limit 1",
                             [spec.name])
        row = cursor.fetchone()
        if row is None:
            return None
        out = dict(zip([d[0] for d in cursor.description], row))
        out["records_failed"] = con.execute(
            f"select count(*) from {state.SCHEMA}.records where sync = ? and failed_checksum is not null "
            "and attempts >= ?", [spec.name, spec.max_attempts]).fetchone()[0]
        return out


def build_sync_asset(spec: SyncSpec, dbt_assets: list[dg.AssetsDefinition]) -> list:
    """The asset that runs one sync, and its two checks."""
    key = sync_asset_key(spec)
    model_key = get_asset_key_for_model(dbt_assets, spec.model)
    max_rate = float(spec.options.get("max_rejection_rate", DEFAULT_MAX_REJECTION_RATE))

    @dg.asset(
        key=key, deps=[model_key], group_name=GROUP, kinds={spec.destination, "reverse_etl"},
        description=f"{spec.label}: {spec.mode} {spec.destination} {spec.object} from {spec.model} "
                    f"(declared in {spec.source_file}).",
        automation_condition=automation_for(spec), output_required=False,
        retry_policy=SYNC_RETRY_POLICY,
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26),
                                                        warn_window=dt.timedelta(hours=2)),
        metadata={"sync": spec.name, "model": spec.model, "mode": spec.mode, "match_field": spec.match_field,
                  "declaration": spec.source_file,
                  "fields": dg.MetadataValue.json({m.column: m.field for m in spec.mappings})},
        tags={"growth_stack/destination": spec.destination},
    )
    def _sync(context: dg.AssetExecutionContext, config: SyncRunConfig):
        from growth_stack_dagster.activation.engine import plan_sync, run_sync

        if config.dry_run:
            plan = plan_sync(spec, sample=3, full_resync=config.full_resync)
            # Sample payloads hold personal data: they go to a local file, not into the run's metadata.
            path = journal.sync_dir(spec.name) / f"dry-run-{context.run.run_id}.json"
            path.write_text(json.dumps(plan.as_dict(), indent=2, default=str))
            context.log_event(dg.AssetObservation(
                asset_key=key, metadata={**{f"planned_{k}": v for k, v in plan.counts.items()},
                                         **{f"to_{op}": n for op, n in plan.operations.items()},
                                         "dry_run": True, "samples_file": str(path)}))
            return
        result = run_sync(spec, full_resync=config.full_resync, run_id=context.run.run_id, log=context.log.info)
        metadata = result.metadata()
        if result.status != "success":
            raise dg.Failure(description=result.message, metadata=metadata)
        yield dg.MaterializeResult(metadata=metadata)

    @dg.asset_check(asset=key, name="rejection_rate",
                    description=f"At most {max_rate:.0%} of the records sent by the last run were rejected.")
    def _rejection_rate() -> dg.AssetCheckResult:
        run = latest_run(spec)
        rate = float(run["rejection_rate"] or 0.0) if run else 0.0
        return dg.AssetCheckResult(passed=rate <= max_rate, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"rejection_rate": rate, "sent": int(run["sent"]) if run else 0,
                                             "rejected": int(run["rejected"]) if run else 0})

    @dg.asset_check(asset=key, name="not_stale", additional_deps=[model_key],
                    description=f"The last run started after the latest build of {spec.model} and left no "
                                "record failing for good.")
    def _not_stale(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        run = latest_run(spec)
        event = context.instance.get_latest_materialization_event(model_key)
        model_built = event.timestamp if event is not None else 0.0
        started = run["started_at"].replace(tzinfo=dt.timezone.utc).timestamp() if run else 0.0
        failed = int(run["records_failed"]) if run else 0
        passed = run is not None and started >= model_built and failed == 0
        return dg.AssetCheckResult(passed=passed, severity=dg.AssetCheckSeverity.WARN,
                                   metadata={"model_built_at": model_built, "sync_started_at": started,
                                             "records_failed": failed})

    return [_sync, _rejection_rate, _not_stale]


def build_sync_assets(syncs: dict[str, SyncSpec], dbt_assets: list[dg.AssetsDefinition]) -> tuple[list, list]:
    """One asset per declared sync, and the checks of all of them: (assets, checks)."""
    built = [build_sync_asset(spec, dbt_assets) for spec in syncs.values()]
    return [b[0] for b in built], [c for b in built for c in b[1:]]



