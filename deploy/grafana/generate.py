"""Generate spanmeter's Grafana dashboards from code, with grafana-foundation-sdk.

The committed JSON under ``deploy/grafana/dashboards/`` is this script's output; a test
checks that they are equal, so edit this file and run ``make dashboards`` (or
``python deploy/grafana/generate.py``), never the JSON.

Two datasources, both provisioned by ``deploy/grafana/provisioning/datasources``:

* Prometheus (uid ``spanmeter-prometheus``) for operational panels: spend, rates, cost per
  request, budgets and alert counts, ingest health. Bounded labels only.
* Infinity (uid ``spanmeter-api``, plugin ``yesoreyeram-infinity-datasource``) for the
  high-cardinality drill-downs, which read the receiver's JSON API (``/api/v1/...``):
  users, prompt versions, the alerts inbox, investigate, data quality. They give the same
  answers on any store, since the API is the store's query layer.

The SDK has no Infinity query type, so :class:`InfinityQuery` implements its ``Dataquery``
variant (the SDK's documented extension point) and emits the plugin's query model.

On the PostgreSQL store, two more dashboards (``postgres-spend``, ``postgres-tenants``) read
the store's read-only views (``spend_minute``, ``spend_hour``, ``spend_day``, see
``docs/grafana.md``) through Grafana's built-in PostgreSQL datasource (uid
``spanmeter-postgres``, provisioned by ``provisioning/datasources/spanmeter-postgres.yaml``):
any dimension, tenants and users included, without Prometheus's label limits. Their raw SQL
uses Grafana's macros (``$__timeFilter(time)``, ``$__timeGroupAlias(time, $__interval)``) and
two variables: ``environment`` (multi-value; its "All" is the custom value ``environment``,
which Grafana inserts unquoted, so ``environment IN ($environment)`` reads as no filter even
when the range has no rows) and ``data_mode`` (single value, ``real`` by default as in
spanmeter's own reports). :class:`SqlQuery` emits the datasource's query model, which the SDK
has no builder for either.

Every dashboard has the variables ``environment``, ``data_mode``, ``endpoint_tag`` and
``tenant``. Their "All" value is ``.*``: a regex for PromQL matchers, and "no filter" for
the JSON API (which drops ``.*`` parameters). Links carry the time range
(``${__url_time_range}``) and the variables (``var-...``) into the drill-downs.

Requires Python 3.11+ (the SDK uses ``typing.Self``); it is a development tool, not part of
the installed package.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dm

HERE: Final = Path(__file__).resolve().parent
OUT_DIR: Final = HERE / "dashboards"

PROMETHEUS_UID: Final = "spanmeter-prometheus"
PROMETHEUS_TYPE: Final = "prometheus"
API_UID: Final = "spanmeter-api"
API_TYPE: Final = "yesoreyeram-infinity-datasource"
PROMETHEUS: Final = dm.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)
API: Final = dm.DataSourceRef(type_val=API_TYPE, uid=API_UID)
POSTGRES_UID: Final = "spanmeter-postgres"
POSTGRES_TYPE: Final = "grafana-postgresql-datasource"
POSTGRES: Final = dm.DataSourceRef(type_val=POSTGRES_TYPE, uid=POSTGRES_UID)
TAG: Final = "spanmeter"
ALL: Final = ".*"

VARIABLES: Final = ("environment", "data_mode", "endpoint_tag", "tenant")
FILTER: Final = (
    'environment=~"$environment",data_mode="$data_mode",endpoint_tag=~"$endpoint_tag",tenant=~"$tenant"'
)
"""The label matchers every cost query carries."""
API_FILTER: Final = (
    "from=${__from:date:seconds}&to=${__to:date:seconds}&environment=${environment}"
    "&data_mode=${data_mode}&where=endpoint_tag%3D${endpoint_tag}&where=tenant_id%3D${tenant}"
)
"""The same filters as JSON API query parameters (``.*`` = no filter, see the docstring)."""
API_WINDOW: Final = "from=${__from:date:seconds}&to=${__to:date:seconds}"
VARS_IN_URL: Final = (
    "var-environment=${environment}&var-data_mode=${data_mode}"
    "&var-endpoint_tag=${endpoint_tag}&var-tenant=${tenant}"
)

UIDS: Final = {
    "overview": "spanmeter-overview",
    "endpoints": "spanmeter-endpoints",
    "tenants": "spanmeter-tenants",
    "prompts": "spanmeter-prompt-versions",
    "alerts": "spanmeter-alerts",
    "quality": "spanmeter-data-quality",
    "pg-spend": "spanmeter-postgres-spend",
    "pg-tenants": "spanmeter-postgres-tenants",
}


# -- Infinity queries -------------------------------------------------------------------------


class InfinityQuery(cogvariants.Dataquery):
    """One Infinity query (JSON over HTTP, backend parser) against the spanmeter API.

    ``url`` is relative: Infinity prefixes the datasource's URL, so the dashboards do not
    name a host (see ``docs/grafana.md``).
    """

    def __init__(self, ref_id: str, url: str, root: str, columns: Sequence[tuple[str, str, str]]) -> None:
        self.ref_id = ref_id
        self.url = url
        self.root = root
        self.columns = columns

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": API.to_json(),
            "type": "json",
            "source": "url",
            "parser": "backend",
            "format": "table",
            "url": self.url,
            "url_options": {"method": "GET", "data": ""},
            "root_selector": self.root,
            "columns": [{"selector": s, "text": t, "type": kind} for s, t, kind in self.columns],
        }


class Infinity(cogbuilder.Builder[InfinityQuery]):
    """Builder for :class:`InfinityQuery`, so it plugs into ``with_target``."""

    def __init__(
        self, url: str, root: str, columns: Sequence[tuple[str, str, str]], ref_id: str = "A"
    ) -> None:
        self._query = InfinityQuery(ref_id, url, root, columns)

    def build(self) -> InfinityQuery:
        return self._query


# -- helpers ----------------------------------------------------------------------------------


def promql(expr: str, legend: str = "", ref_id: str = "A", instant: bool = False) -> prom.Dataquery:
    query = prom.Dataquery().expr(expr).ref_id(ref_id).datasource(PROMETHEUS)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


def link(title: str, target: str, **overrides: str) -> db.DashboardLink:
    """A data link to dashboard ``target`` keeping the time range and every variable;
    ``overrides`` replace a variable with a value from the clicked field."""
    params = [f"var-{name}={overrides.get(name, '${' + name + '}')}" for name in VARIABLES]
    url = f"/d/{UIDS[target]}?${{__url_time_range}}&" + "&".join(params)
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).target_blank(False)


def timeseries_panel(
    title: str, unit: str, *queries: prom.Dataquery, description: str = ""
) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(12).height(8)
    if description:
        panel = panel.description(description)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def stat_panel(title: str, unit: str, query: prom.Dataquery, description: str = "") -> stat.Panel:
    panel = stat.Panel().title(title).unit(unit).datasource(PROMETHEUS).span(6).height(5).with_target(query)
    return panel.description(description) if description else panel


def api_table(
    title: str, url: str, root: str, columns: Sequence[tuple[str, str, str]], description: str = ""
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .datasource(API)
        .span(24)
        .height(9)
        .with_target(Infinity(url, root, columns))
    )
    return panel.description(description) if description else panel


def top_columns(key: str, label: str, *, share: bool = True) -> list[tuple[str, str, str]]:
    """The columns of a ranking table from ``/api/v1/top``: the ranked value, then its figures."""
    columns = [
        (key, label, "string"),
        ("cost_usd", "Cost (USD)", "number"),
        ("logical_requests", "Logical requests", "number"),
        ("attempts", "Attempts", "number"),
        ("cost_per_logical_request_usd", "Cost / request (USD)", "number"),
    ]
    return [*columns, ("share", "Share", "number")] if share else columns


def variable_option(value: str, text: str | None = None) -> dm.VariableOption:
    return dm.VariableOption(selected=True, text=text or value, value=value)


def label_variable(name: str, label: str, metric: str = "spanmeter_attempts_total") -> db.QueryVariable:
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(f"label_values({metric}, {name})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(ALL)
        .current(variable_option("$__all", "All"))
    )


def base(uid_key: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(UIDS[uid_key])
        .description(description)
        .tags([TAG])
        .editable()
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(label_variable("environment", "Environment"))
        .with_variable(
            db.CustomVariable("data_mode")
            .label("Data mode")
            .values("real,test,demo")
            .current(variable_option("real"))
        )
        .with_variable(label_variable("endpoint_tag", "Endpoint tag"))
        .with_variable(label_variable("tenant", "Tenant (top N + other)"))
        .link(
            db.DashboardLink("spanmeter")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(True)
        )
    )


def cost(metric: str = "spanmeter_cost_usd_total") -> str:
    return f"{metric}{{{FILTER}}}"


# -- dashboards -------------------------------------------------------------------------------


def overview() -> db.Dashboard:
    return (
        base(
            "overview",
            "spanmeter / Overview",
            "Spend, spend rate, cost per request, budget posture, active alerts.",
        )
        .with_panel(
            stat_panel(
                "Spend (range)",
                "currencyUSD",
                promql(f"sum(increase({cost()}[$__range]))", instant=True),
                "Committed spend in the selected range (increase of the cost counters).",
            )
        )
        .with_panel(
            stat_panel(
                "Cost per logical request",
                "currencyUSD",
                promql(
                    f"sum(increase({cost()}[$__range])) / sum(increase({cost('spanmeter_requests_total')}[$__range]))",
                    instant=True,
                ),
            )
        )
        .with_panel(
            stat_panel(
                "Budgets warning or exceeded",
                "short",
                promql(
                    'sum(max by (budget, state) (spanmeter_budget_states{state=~"warning|exceeded"}))',
                    instant=True,
                ),
                "Budget states past a threshold (max across replicas: every replica reads the same store).",
            )
        )
        .with_panel(
            stat_panel(
                "Open alerts",
                "short",
                promql('sum(max by (kind, source, severity) (spanmeter_alerts{state="open"}))', instant=True),
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend rate (USD/hour)",
                "currencyUSD",
                promql(f"sum(rate({cost()}[$__rate_interval])) * 3600", "total"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by endpoint tag (USD/hour)",
                "currencyUSD",
                promql(
                    f"sum by (endpoint_tag) (rate({cost()}[$__rate_interval])) * 3600", "{{endpoint_tag}}"
                ),
            ).data_links(
                [
                    link(
                        "Endpoint ${__field.labels.endpoint_tag}",
                        "endpoints",
                        endpoint_tag="${__field.labels.endpoint_tag}",
                    )
                ]
            )
        )
        .with_panel(
            bargauge.Panel()
            .title("Budget utilisation")
            .unit("percentunit")
            .datasource(PROMETHEUS)
            .span(12)
            .height(8)
            .min(0)
            .max(1)
            .with_target(
                promql(
                    "max by (budget, scope) (spanmeter_budget_utilization_ratio)",
                    "{{budget}} {{scope}}",
                    instant=True,
                )
            )
            .data_links([link("Alerts inbox", "alerts")])
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by tenant (USD/hour, top N + other)",
                "currencyUSD",
                promql(f"sum by (tenant) (rate({cost()}[$__rate_interval])) * 3600", "{{tenant}}"),
            ).data_links(
                [link("Tenant ${__field.labels.tenant}", "tenants", tenant="${__field.labels.tenant}")]
            )
        )
    )


def endpoints() -> db.Dashboard:
    return (
        base(
            "endpoints",
            "spanmeter / Endpoints",
            "Spend, cost per request, retries and tokens by endpoint tag.",
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by endpoint tag (USD/hour)",
                "currencyUSD",
                promql(
                    f"sum by (endpoint_tag) (rate({cost()}[$__rate_interval])) * 3600", "{{endpoint_tag}}"
                ),
            ).data_links(
                [
                    link(
                        "Prompt versions of ${__field.labels.endpoint_tag}",
                        "prompts",
                        endpoint_tag="${__field.labels.endpoint_tag}",
                    )
                ]
            )
        )
        .with_panel(
            timeseries_panel(
                "Cost per logical request by endpoint tag",
                "currencyUSD",
                promql(
                    f"sum by (endpoint_tag) (rate({cost()}[$__rate_interval]))"
                    f" / sum by (endpoint_tag) (rate({cost('spanmeter_requests_total')}[$__rate_interval]))",
                    "{{endpoint_tag}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Retry multiplier (attempts per logical request)",
                "short",
                promql(
                    f"sum by (endpoint_tag) (rate({cost('spanmeter_attempts_total')}[$__rate_interval]))"
                    f" / sum by (endpoint_tag) (rate({cost('spanmeter_requests_total')}[$__rate_interval]))",
                    "{{endpoint_tag}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Tokens per second by type",
                "short",
                promql(
                    f"sum by (type) (rate({cost('spanmeter_tokens_total')}[$__rate_interval]))", "{{type}}"
                ),
                description="input includes cache reads and writes; output includes reasoning.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by model (USD/hour)",
                "currencyUSD",
                promql(
                    f"sum by (provider, model) (rate({cost()}[$__rate_interval])) * 3600",
                    "{{provider}} {{model}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Failed attempts per second by endpoint tag",
                "short",
                promql(
                    f"sum by (endpoint_tag) (rate({cost('spanmeter_failed_attempts_total')}[$__rate_interval]))",
                    "{{endpoint_tag}}",
                ),
            )
        )
        .with_panel(
            api_table(
                "Endpoint ranking (exact, from the store)",
                f"/api/v1/top?by=endpoint_tag&limit=50&{API_FILTER}",
                "groups",
                top_columns("endpoint_tag", "Endpoint tag"),
            ).data_links(
                [link("Prompt versions", "prompts", endpoint_tag='${__data.fields["Endpoint tag"]}')]
            )
        )
    )


def tenants() -> db.Dashboard:
    return (
        base(
            "tenants",
            "spanmeter / Tenants and users",
            "Who spends: top tenants (Prometheus) and every tenant and user (API).",
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by tenant (USD/hour, top N + other)",
                "currencyUSD",
                promql(f"sum by (tenant) (rate({cost()}[$__rate_interval])) * 3600", "{{tenant}}"),
                description="Tenants outside the top N are summed under 'other'; the table below ranks all of them.",
            )
        )
        .with_panel(
            timeseries_panel(
                "Cost per logical request by tenant",
                "currencyUSD",
                promql(
                    f"sum by (tenant) (rate({cost()}[$__rate_interval]))"
                    f" / sum by (tenant) (rate({cost('spanmeter_requests_total')}[$__rate_interval]))",
                    "{{tenant}}",
                ),
            )
        )
        .with_panel(
            api_table(
                "Tenant ranking (every tenant, from the store)",
                f"/api/v1/top?by=tenant_id&limit=100&{API_FILTER}",
                "groups",
                top_columns("tenant_id", "Tenant", share=False),
            ).data_links(
                [link("Tenant in Prometheus panels", "tenants", tenant='${__data.fields["Tenant"]}')]
            )
        )
        .with_panel(
            api_table(
                "User ranking (hashed ids; never in Prometheus)",
                f"/api/v1/top?by=user_id&limit=100&{API_FILTER}",
                "groups",
                top_columns("user_id", "User (hashed)", share=False),
            )
        )
    )


def prompts() -> db.Dashboard:
    return (
        base(
            "prompts",
            "spanmeter / Prompt versions",
            "Cost per request by prompt version, and every version from the store.",
        )
        .with_panel(
            timeseries_panel(
                "Cost per logical request by prompt version",
                "currencyUSD",
                promql(
                    f"sum by (endpoint_tag, prompt_version) (rate({cost()}[$__rate_interval]))"
                    f" / sum by (endpoint_tag, prompt_version) (rate({cost('spanmeter_requests_total')}[$__rate_interval]))",
                    "{{endpoint_tag}} {{prompt_version}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Spend rate by prompt version (USD/hour)",
                "currencyUSD",
                promql(
                    f"sum by (endpoint_tag, prompt_version) (rate({cost()}[$__rate_interval])) * 3600",
                    "{{endpoint_tag}} {{prompt_version}}",
                ),
            )
        )
        .with_panel(
            api_table(
                "Prompt versions (exact, from the store)",
                f"/api/v1/top?by=prompt_version&limit=100&{API_FILTER}",
                "groups",
                top_columns("prompt_version", "Prompt version"),
            )
        )
        .with_panel(
            api_table(
                "Prompt-version comparison (same window, significance-checked)",
                "/api/v1/compare/prompt-versions?min_samples=2&endpoint=${endpoint_tag}&environment=${environment}"
                f"&data_mode=${{data_mode}}&{API_WINDOW}",
                "versions",
                [
                    ("endpoint_tag", "Endpoint tag", "string"),
                    ("prompt_version", "Prompt version", "string"),
                    ("logical_requests", "Logical requests", "number"),
                    ("cost_per_request_usd", "Cost / request (USD)", "number"),
                    ("success_rate", "Success rate", "number"),
                    ("previous_version", "Previous version", "string"),
                ],
                "Pick one endpoint tag to compare its versions.",
            )
        )
    )


def alerts() -> db.Dashboard:
    return (
        base(
            "alerts",
            "spanmeter / Alerts inbox",
            "Budget states, the alerts inbox and the investigation of the window.",
        )
        .with_panel(
            stat_panel(
                "Open alerts",
                "short",
                promql('sum(max by (kind, source, severity) (spanmeter_alerts{state="open"}))', instant=True),
            )
        )
        .with_panel(
            stat_panel(
                "Budgets exceeded",
                "short",
                promql('sum(max by (budget) (spanmeter_budget_states{state="exceeded"}))', instant=True),
            )
        )
        .with_panel(
            timeseries_panel(
                "Alerts by state and severity",
                "short",
                promql(
                    "sum by (state, severity) (max by (kind, source, state, severity) (spanmeter_alerts))",
                    "{{state}} {{severity}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Budget spend vs limit (USD)",
                "currencyUSD",
                promql("max by (budget, scope) (spanmeter_budget_spend_usd)", "{{budget}} {{scope}} spend"),
                promql(
                    "max by (budget, scope) (spanmeter_budget_limit_usd)",
                    "{{budget}} {{scope}} limit",
                    ref_id="B",
                ),
            )
        )
        .with_panel(
            api_table(
                "Alerts inbox",
                "/api/v1/alerts?limit=200",
                "alerts",
                [
                    ("id", "Id", "number"),
                    ("occurred_at", "Occurred", "timestamp"),
                    ("state", "State", "string"),
                    ("severity", "Severity", "string"),
                    ("kind", "Kind", "string"),
                    ("source", "Source", "string"),
                    ("title", "Title", "string"),
                ],
            ).data_links([link("Spend overview (same range and filters)", "overview")])
        )
        .with_panel(
            api_table(
                "Budget states",
                "/api/v1/budgets/status",
                "states",
                [
                    ("budget", "Budget", "string"),
                    ("scope_key", "Scope", "string"),
                    ("state", "State", "string"),
                    ("spend_usd", "Spend (USD)", "number"),
                    ("limit_usd", "Limit (USD)", "number"),
                    ("ratio", "Utilisation", "number"),
                    ("projected_usd", "Projected (USD)", "number"),
                ],
            )
        )
        .with_panel(
            api_table(
                "Investigate: what drove the change vs the previous window",
                f"/api/v1/investigate?baseline=previous&{API_FILTER}",
                "dimensions",
                [
                    ("dimension", "Dimension", "string"),
                    ("available", "Available", "boolean"),
                    ("groups", "Values in the window", "number"),
                ],
            )
        )
    )


def quality() -> db.Dashboard:
    ingest = "[$__rate_interval]"
    return (
        base("quality", "spanmeter / Data quality", "Pricing coverage, attribution checks and ingest health.")
        .with_panel(
            stat_panel(
                "Unpriced share of attempts",
                "percentunit",
                promql(
                    f"sum(increase({cost('spanmeter_unpriced_attempts_total')}[$__range]))"
                    f" / sum(increase({cost('spanmeter_attempts_total')}[$__range]))",
                    instant=True,
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "GenAI spans per second by pricing status",
                "short",
                promql(
                    f"sum by (pricing_status) (rate(spanmeter_spans_genai_total{ingest}))",
                    "{{pricing_status}}",
                ),
            )
        )
        .with_panel(
            timeseries_panel(
                "Ingest: stored, duplicate, rejected, throttled per second",
                "short",
                promql(f"sum(rate(spanmeter_spans_stored_total{ingest}))", "stored"),
                promql(f"sum(rate(spanmeter_spans_duplicate_total{ingest}))", "duplicate", ref_id="B"),
                promql(f"sum(rate(spanmeter_spans_rejected_total{ingest}))", "rejected", ref_id="C"),
                promql(f"sum(rate(spanmeter_exports_throttled_total{ingest}))", "throttled", ref_id="D"),
            )
        )
        .with_panel(
            timeseries_panel(
                "Export to commit latency (p50, p99)",
                "s",
                promql(
                    f"histogram_quantile(0.5, sum by (le) (rate(spanmeter_export_duration_seconds_bucket{ingest})))",
                    "p50",
                ),
                promql(
                    f"histogram_quantile(0.99, sum by (le) (rate(spanmeter_export_duration_seconds_bucket{ingest})))",
                    "p99",
                    ref_id="B",
                ),
            )
        )
        .with_panel(
            api_table(
                "Data-quality checklist (doctor)",
                f"/api/v1/quality?{API_WINDOW}&environment=${{environment}}&data_mode=${{data_mode}}",
                "checks",
                [
                    ("title", "Check", "string"),
                    ("status", "Status", "string"),
                    ("share", "Share", "number"),
                    ("weight", "Weight", "number"),
                    ("remedy", "Remedy", "string"),
                ],
            )
        )
    )


# -- PostgreSQL: the store's views through Grafana's built-in datasource ---------------------

PG_VARIABLES: Final = ("environment", "data_mode")
PG_FILTER: Final = "$__timeFilter(time) AND environment IN ($environment) AND data_mode = '$data_mode'"
"""The conditions every query on the views carries: Grafana's range, then the variables."""
NOT_SET: Final = "(not set)"
"""How a missing dimension (stored as ``''``) is shown."""
SERIES: Final = 10
"""Series a by-tenant or by-user chart draws; the rest are summed as ``other``."""


class SqlQuery(cogvariants.Dataquery):
    """One raw-SQL query of Grafana's PostgreSQL datasource (``format``: ``time_series`` or
    ``table``)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: str) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.fmt = fmt

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": POSTGRES.to_json(),
            "editorMode": "code",
            "rawQuery": True,
            "format": self.fmt,
            "rawSql": self.raw_sql,
        }


class Sql(cogbuilder.Builder[SqlQuery]):
    """Builder for :class:`SqlQuery`, so it plugs into ``with_target``."""

    def __init__(self, raw_sql: str, fmt: str = "table", ref_id: str = "A") -> None:
        self._query = SqlQuery(ref_id, raw_sql, fmt)

    def build(self) -> SqlQuery:
        return self._query


def shown(column: str) -> str:
    """A dimension as a label: ``''`` (not carried) reads as :data:`NOT_SET`."""
    return f"CASE WHEN {column} = '' THEN '{NOT_SET}' ELSE {column} END"


def spend_series(view: str, column: str, *, group: str = "$__interval", top: int | None = None) -> str:
    """Cost (USD) per time group and value of ``column``; with ``top``, the ``top`` values that
    cost most over the whole range keep their own series and the others add up to ``other``."""
    if top is None:
        return (
            f"SELECT $__timeGroupAlias(time, {group}), {shown(column)} AS metric, sum(cost_usd) AS cost_usd\n"
            f"FROM {view}\nWHERE {PG_FILTER}\nGROUP BY 1, {column}\nORDER BY 1, 2"
        )
    return (
        f"WITH spend AS (\n  SELECT time, {column} AS key, cost_usd FROM {view}\n  WHERE {PG_FILTER}\n),\n"
        f"leaders AS (SELECT key FROM spend GROUP BY key ORDER BY sum(cost_usd) DESC, key LIMIT {top})\n"
        f"SELECT $__timeGroupAlias(time, {group}),\n"
        f"  CASE WHEN key NOT IN (SELECT key FROM leaders) THEN 'other' ELSE {shown('key')} END AS metric,\n"
        "  sum(cost_usd) AS cost_usd\nFROM spend\nGROUP BY 1, 2\nORDER BY 1, 2"
    )


RANKING_COLUMNS: Final = (
    ("sum(cost_usd)", "Cost (USD)"),
    ("sum(logical_requests)", "Logical requests"),
    ("sum(attempts)", "Attempts"),
    ("sum(cost_usd) / NULLIF(sum(logical_requests), 0)", "Cost / request (USD)"),
    ("sum(input_tokens)", "Input tokens"),
    ("sum(output_tokens)", "Output tokens"),
    ("sum(unpriced)", "Unpriced attempts"),
    ("sum(cost_usd) / NULLIF(sum(sum(cost_usd)) OVER (), 0)", "Share"),
)
"""The figures of a ranking table, as ``spanmeter top`` shows them."""


def ranking(view: str, keys: Sequence[tuple[str, str]], limit: int) -> str:
    """The ``limit`` groups of ``keys`` (column, title) that cost most, in ``spanmeter top``'s
    order (cost, then value); ``Share`` is of the groups' total."""
    selected = [f'{shown(column)} AS "{title}"' for column, title in keys]
    selected += [f'{expression} AS "{title}"' for expression, title in RANKING_COLUMNS]
    names = ", ".join(column for column, _ in keys)
    return (
        f"SELECT {', '.join(selected)}\nFROM {view}\nWHERE {PG_FILTER}\nGROUP BY {names}\n"
        f"HAVING sum(attempts) > 0\nORDER BY sum(cost_usd) DESC, {names}\nLIMIT {limit}"
    )


def total(expression: str, title: str) -> str:
    return f'SELECT {expression} AS "{title}"\nFROM spend_minute\nWHERE {PG_FILTER}'


def pg_link(title: str, target: str) -> db.DashboardLink:
    """A data link to dashboard ``target`` keeping the time range and the variables
    (``:queryparam`` writes ``var-environment=...`` once per selected environment)."""
    params = "&".join(f"${{{name}:queryparam}}" for name in PG_VARIABLES)
    url = f"/d/{UIDS[target]}?${{__url_time_range}}&{params}"
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).target_blank(False)


def pg_timeseries(
    title: str, raw_sql: str, *, interval: str, unit: str = "currencyUSD", description: str = ""
) -> timeseries.Panel:
    """``interval`` is the panel's minimum: the view's bucket (finer groups would be empty)."""
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(POSTGRES)
        .span(12)
        .height(8)
        .interval(interval)
        .with_target(Sql(raw_sql, "time_series"))
    )
    return panel.description(description) if description else panel


def pg_table(title: str, raw_sql: str, description: str = "") -> table.Panel:
    panel = table.Panel().title(title).datasource(POSTGRES).span(24).height(9).with_target(Sql(raw_sql))
    return panel.description(description) if description else panel


def pg_stat(title: str, unit: str, raw_sql: str) -> stat.Panel:
    return (
        stat.Panel().title(title).unit(unit).datasource(POSTGRES).span(6).height(5).with_target(Sql(raw_sql))
    )


def pg_base(uid_key: str, title: str, description: str) -> db.Dashboard:
    environments = (
        f"SELECT DISTINCT {shown('environment')} AS __text, environment AS __value\n"
        "FROM spend_hour\nWHERE $__timeFilter(time)\nORDER BY 1"
    )
    return (
        db.Dashboard(title)
        .uid(UIDS[uid_key])
        .description(description)
        .tags([TAG, "postgresql"])
        .editable()
        .time("now-24h", "now")
        .refresh("5m")
        .timezone("browser")
        .with_variable(
            db.QueryVariable("environment")
            .label("Environment")
            .datasource(POSTGRES)
            .query(environments)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value("environment")
            .current(variable_option("$__all", "All"))
        )
        .with_variable(
            db.CustomVariable("data_mode")
            .label("Data mode")
            .values("real,test,demo")
            .current(variable_option("real"))
        )
        .link(
            db.DashboardLink("spanmeter")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(True)
        )
    )


def pg_spend() -> db.Dashboard:
    tenants_link = [pg_link("Tenants and users", "pg-tenants")]
    return (
        pg_base(
            "pg-spend",
            "spanmeter / Spend by dimension (PostgreSQL)",
            "Spend by endpoint, model, tenant and outcome from the store's views: every value, no label limit.",
        )
        .with_panel(pg_stat("Spend (range)", "currencyUSD", total("sum(cost_usd)", "Spend (USD)")))
        .with_panel(pg_stat("Logical requests", "short", total("sum(logical_requests)", "Logical requests")))
        .with_panel(pg_stat("Attempts", "short", total("sum(attempts)", "Attempts")))
        .with_panel(
            pg_stat(
                "Cost per logical request",
                "currencyUSD",
                total("sum(cost_usd) / NULLIF(sum(logical_requests), 0)", "Cost / request (USD)"),
            )
        )
        .with_panel(
            pg_timeseries(
                "Spend by endpoint tag (USD per interval)",
                spend_series("spend_minute", "endpoint_tag"),
                interval="1m",
            )
        )
        .with_panel(
            pg_timeseries(
                "Spend by model (USD per interval)", spend_series("spend_minute", "model"), interval="1m"
            )
        )
        .with_panel(
            pg_timeseries(
                f"Spend by tenant (USD per interval, top {SERIES} + other)",
                spend_series("spend_minute", "tenant_id", top=SERIES),
                interval="1m",
                description="Every tenant is in the ranking below and on the tenants dashboard.",
            ).data_links(tenants_link)
        )
        .with_panel(
            pg_timeseries(
                "Spend by outcome (USD per interval)", spend_series("spend_minute", "outcome"), interval="1m"
            )
        )
        .with_panel(
            pg_table(
                "Endpoint ranking",
                ranking("spend_minute", [("endpoint_tag", "Endpoint tag")], 50),
            )
        )
        .with_panel(
            pg_table(
                "Tenant ranking (top 50)",
                ranking("spend_minute", [("tenant_id", "Tenant")], 50),
            ).data_links(tenants_link)
        )
    )


def pg_tenants() -> db.Dashboard:
    spend_link = [pg_link("Spend by dimension", "pg-spend")]
    return (
        pg_base(
            "pg-tenants",
            "spanmeter / Tenants and users (PostgreSQL)",
            "Every tenant and every (hashed) user, per hour and per day, from the store's views.",
        )
        .with_panel(
            pg_timeseries(
                f"Spend by tenant (USD per interval, top {SERIES} + other)",
                spend_series("spend_hour", "tenant_id", top=SERIES),
                interval="1h",
            ).data_links(spend_link)
        )
        .with_panel(
            pg_timeseries(
                f"Spend by user (USD per interval, top {SERIES} + other)",
                spend_series("spend_hour", "user_id", top=SERIES),
                interval="1h",
                description="User ids are hashed at ingest; Prometheus never sees them.",
            )
        )
        .with_panel(
            pg_timeseries(
                "Daily spend by tenant (USD per UTC day)",
                spend_series("spend_day", "tenant_id", group="1d", top=SERIES),
                interval="1d",
                description="Days whose start lies in the range (a day counts wholly or not at all).",
            )
        )
        .with_panel(
            pg_table("Tenant ranking (top 100)", ranking("spend_minute", [("tenant_id", "Tenant")], 100))
        )
        .with_panel(
            pg_table(
                "User ranking (top 100, hashed ids)",
                ranking("spend_hour", [("user_id", "User (hashed)")], 100),
                "Hourly buckets: a bucket counts when its hour starts in the range.",
            )
        )
        .with_panel(
            pg_table(
                "Users of each tenant (top 200)",
                ranking("spend_hour", [("tenant_id", "Tenant"), ("user_id", "User (hashed)")], 200),
            )
        )
    )


DASHBOARDS: Final[dict[str, Callable[[], db.Dashboard]]] = {
    "overview": overview,
    "endpoints": endpoints,
    "tenants": tenants,
    "prompt-versions": prompts,
    "alerts": alerts,
    "data-quality": quality,
    "postgres-spend": pg_spend,
    "postgres-tenants": pg_tenants,
}


def layout(panels: list[dict[str, Any]]) -> None:
    """Flow the panels left to right, wrapping at Grafana's 24 columns.

    Done here rather than by the SDK's builder, whose automatic placement (0.x) overlaps
    panels once widths differ within a row."""
    x = y = row_bottom = 0
    for panel in panels:
        grid = panel["gridPos"]
        if x + grid["w"] > 24:
            x, y = 0, row_bottom
        grid["x"], grid["y"] = x, y
        x += grid["w"]
        row_bottom = max(row_bottom, y + grid["h"])


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as the JSON document committed under ``dashboards/<name>.json``."""
    documents: dict[str, dict[str, Any]] = {}
    for name, make in DASHBOARDS.items():
        document = json.loads(json.dumps(make().build(), cls=JSONEncoder))
        layout(document["panels"])
        for panel_id, panel in enumerate(document["panels"], start=1):
            panel["id"] = panel_id  # the SDK leaves ids to Grafana; links and tests want them stable
            if panel.get("options") is None:
                panel["options"] = {}  # a builder that set no option emits null, which Grafana chokes on
        documents[name] = document
    return documents


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON differs")
    args = parser.parse_args(argv)
    stale = []
    OUT_DIR.mkdir(exist_ok=True)
    for name, document in build_all().items():
        path = OUT_DIR / f"{name}.json"
        text = render(document)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale dashboards (run make dashboards): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
