{#- Models land in the schema their folder names (staging, intermediate, marts, activation),
    not in "<target schema>_<folder>", so the warehouse layout matches DESIGN.md. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
