"""dbt models land in the Dagster group of the flow their folder names."""

from growth_stack_dagster.transform.translator import group_for_fqn


def test_staging_models_stay_in_staging_whatever_their_source():
    assert group_for_fqn(["growth_stack", "staging", "finance", "stg_finance__sku_costs"]) == "staging"
    assert group_for_fqn(["growth_stack", "staging", "events", "stg_events__pages"]) == "staging"


def test_sub_folders_pick_their_flow_group():
    assert group_for_fqn(["growth_stack", "intermediate", "identity", "int_identity_components"]) == "identity"
    assert group_for_fqn(["growth_stack", "marts", "identity", "customer_identifiers"]) == "identity"
    assert group_for_fqn(["growth_stack", "marts", "marketing", "campaign_performance"]) == "marketing"
    assert group_for_fqn(["growth_stack", "marts", "finance", "exec_daily_metrics"]) == "finance"
    assert group_for_fqn(["growth_stack", "marts", "customers", "customer_traits"]) == "customer_360"
    # the steps that prepare the customer marts sit with them, not with identity
    assert group_for_fqn(["growth_stack", "intermediate", "customers", "int_app_messages_attributed"]) == "customer_360"
    assert group_for_fqn(["growth_stack", "activation", "sync_hubspot__contacts"]) == "activation"


def test_dbt_source_keys_are_the_raw_table_asset_keys():
    from growth_stack_dagster.ingest.translator import raw_asset_key
    from growth_stack_dagster.transform.translator import GrowthStackDbtTranslator

    props = {"resource_type": "source", "source_name": "stripe", "name": "invoices"}
    assert GrowthStackDbtTranslator().get_asset_key(props) == raw_asset_key("stripe", "invoices")
    assert raw_asset_key("stripe", "invoices").path == ["stripe", "invoices"]
