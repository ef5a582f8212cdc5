#!/usr/bin/python3
"""deploy tier: the Grafana dashboards in deploy/grafana/dashboards/ against docs/metrics.md.

Checks, failing with every problem named:
  - every *.json there parses as a dashboard (uid, title, panels), each panel with a unique id;
  - every panel and template variable uses the provisioned Prometheus data source (uid prometheus);
  - every metric name a query reads is a family docs/metrics.md documents (a histogram's _bucket,
    _sum and _count series count as its family), so the dashboard never shows a name the code
    does not export (the e2e tier checks the code serves exactly the documented families);
  - the dashboards together show lag against workers, rates, durations, errors and usage.

Usage: check_dashboard.py DASHBOARD_DIR METRICS_MD DATASOURCES_DIR
"""
import json
import os
import re
import sys

import yaml

ROW = re.compile(r"^\| `(runnel_[a-z_]+)` \| (counter|gauge|histogram) \|")
NAME = re.compile(r"\b(runnel_[a-z_]+)\b")
REQUIRED = {
    "lag": ["runnel_dispatcher_lag_events", "runnel_dispatcher_lag_seconds"],
    "workers": ["runnel_autoscaler_workers_desired", "runnel_autoscaler_workers_running"],
    "rates": ["runnel_dispatcher_received_events_total", "runnel_dispatcher_completed_events_total"],
    "durations": ["runnel_function_duration_seconds"],
    "errors": ["runnel_dispatcher_errors_total"],
    "usage": ["runnel_usage_invocations_total", "runnel_usage_worker_seconds_total",
              "runnel_usage_cpu_seconds_total", "runnel_usage_peak_memory_bytes"],
}


def documented(metrics_md):
    families = {}
    with open(metrics_md) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                families[m.group(1)] = m.group(2)
    return families


def family_of(name, families):
    if name in families:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and families.get(base) == "histogram":
            return base
    return None


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    dashboards_dir, metrics_md, datasources_dir = sys.argv[1:]
    problems = []
    families = documented(metrics_md)
    if len(families) < 20:
        problems.append(f"{metrics_md}: only {len(families)} documented families found in its table")
    uids = set()
    for f in sorted(os.listdir(datasources_dir)):
        if f.endswith((".yml", ".yaml")):
            with open(os.path.join(datasources_dir, f)) as fh:
                uids.update(ds.get("uid") for ds in yaml.safe_load(fh).get("datasources", []))
    files = sorted(f for f in os.listdir(dashboards_dir) if f.endswith(".json"))
    if not files:
        problems.append(f"{dashboards_dir}: no dashboard JSON")
    used = set()
    for f in files:
        path = os.path.join(dashboards_dir, f)
        try:
            with open(path) as fh:
                dash = json.load(fh)
        except ValueError as e:
            problems.append(f"{f}: not valid JSON: {e}")
            continue
        for key in ("uid", "title", "panels"):
            if key not in dash:
                problems.append(f"{f}: no '{key}'")
        ids = []
        queries = []
        for panel in panels_of(dash):
            ids.append(panel.get("id"))
            if panel.get("type") == "row":
                continue
            ds = panel.get("datasource", {})
            if ds.get("uid") not in uids:
                problems.append(f"{f}: panel '{panel.get('title')}' uses data source {ds}, not a provisioned one {sorted(uids)}")
            targets = panel.get("targets", [])
            if not targets:
                problems.append(f"{f}: panel '{panel.get('title')}' has no query")
            queries += [(panel.get("title"), t.get("expr", "")) for t in targets]
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                if var.get("datasource", {}).get("uid") not in uids:
                    problems.append(f"{f}: variable '{var.get('name')}' uses an unprovisioned data source")
                q = var.get("query")
                queries.append((f"variable {var.get('name')}", q.get("query", "") if isinstance(q, dict) else str(q)))
        if len(ids) != len(set(ids)):
            problems.append(f"{f}: panel ids are not unique: {ids}")
        for title, expr in queries:
            names = NAME.findall(expr)
            if not names:
                problems.append(f"{f}: '{title}' queries no runnel_ metric: {expr}")
            for name in names:
                family = family_of(name, families)
                if family is None:
                    problems.append(f"{f}: '{title}' queries {name}, which docs/metrics.md does not document")
                else:
                    used.add(family)
    for what, names in REQUIRED.items():
        missing = [n for n in names if n not in used]
        if missing:
            problems.append(f"the dashboards show no {what}: {missing} are never queried")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"ok: {len(files)} dashboard(s) query {len(used)} of the {len(families)} documented families, "
              f"all of them documented")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
