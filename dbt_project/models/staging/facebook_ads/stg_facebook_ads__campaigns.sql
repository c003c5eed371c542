{#- facebook_ads.campaigns, renamed and cast. -#}
with source as (
    {{ source_or_empty('facebook_ads', 'campaigns', {
        'id': dbt.type_string(),
        'account_id': dbt.type_string(),
        'name': dbt.type_string(),
        'status': dbt.type_string(),
        'effective_status': dbt.type_string(),
        'objective': dbt.type_string(),
        'daily_budget': dbt.type_string(),
        'lifetime_budget': dbt.type_string(),
        'start_time': type_timestamptz(),
        'stop_time': type_timestamptz(),
        'created_time': type_timestamptz(),
        'updated_time': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as campaign_id,
        account_id,
        name as campaign_name,
        status as campaign_status,
        effective_status,
        objective,
        {{ dbt.safe_cast('daily_budget', dbt.type_numeric()) }} as daily_budget,
        {{ dbt.safe_cast('lifetime_budget', dbt.type_numeric()) }} as lifetime_budget,
        start_time as started_at,
        stop_time as stopped_at,
        created_time as created_at,
        updated_time as updated_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
