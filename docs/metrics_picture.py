"""The picture in docs/observability.md: `safetyamp-pipeline metrics --once` after sandbox syncs,
drawn as dashboard-like panels (plain HTML/SVG, screenshot with Debian's headless Chromium).

    .venv/bin/python docs/metrics_picture.py            # writes docs/img/metrics.png

Two syncs run on a seeded sandbox; between them one employee's Vista e-mail is set to one that a
hand-made SafetyAmp user holds, so the second sync gets a real 422 (one open failure). Every number
in the picture is read from the exporter's text output; nothing is typed in.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetyamp_pipeline_tests.e2e.conftest import start_run  # noqa: E402
from safetyamp_pipeline_tests.operator.test_metrics import reject_one_user  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "docs" / "img" / "metrics.png"
ENTITIES = ("site_clusters", "sites", "user_titles", "users", "assets")
STATES = {"created": "#56a64b", "updated": "#3274d9", "deactivated": "#8f3bb8", "rejected": "#e0b400", "failed": "#e02f44"}


def metrics_text(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "safetyamp_pipeline.cli", "metrics", "--once"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )
    return done.stdout


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name].append((sample.labels, sample.value))
    return out


def _bars(records: dict[str, dict[str, float]]) -> str:
    width, row, left = 620, 34, 110
    biggest = max((sum(states.values()) for states in records.values()), default=1) or 1
    parts = []
    for i, entity in enumerate(ENTITIES):
        x, y = left, 10 + i * row
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end">{entity}</text>')
        for state, color in STATES.items():
            value = records.get(entity, {}).get(state, 0)
            w = value / biggest * (width - left - 60)
            if value:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="24" fill="{color}"/>')
            x += w
        total = sum(records.get(entity, {}).get(s, 0) for s in STATES)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 17}">{total:g}</text>')
    legend = "".join(
        f'<rect x="{left + i * 100}" y="{10 + 5 * row}" width="12" height="12" fill="{c}"/>'
        f'<text x="{left + i * 100 + 16}" y="{21 + 5 * row}">{s}</text>' for i, (s, c) in enumerate(STATES.items())
    )
    return f'<svg width="{width}" height="{30 + 6 * row}">{"".join(parts)}{legend}</svg>'


def render_html(text: str, now: float) -> str:
    s = _samples(text)
    last = {labels["entity"]: v for labels, v in s["safetyamp_sink_last_success_timestamp_seconds"]}
    records: dict[str, dict[str, float]] = defaultdict(dict)
    for labels, v in s["safetyamp_sink_records"]:
        records[labels["entity"]][labels["state"]] = v
    failures = sum(v for _, v in s["safetyamp_open_failures"])
    store_up = s["safetyamp_exporter_store_up"][0][1]
    instance_up = s["safetyamp_exporter_instance_up"][0][1]
    tiles = "".join(
        f'<div class="tile"><div class="label">{entity}<br>since last success</div>'
        f'<div class="value ok">{max(now - last[entity], 0):.0f} s</div></div>' for entity in ENTITIES if entity in last
    )
    tiles += f'<div class="tile"><div class="label">open failures</div><div class="value warn">{failures:g}</div></div>'
    tiles += (f'<div class="tile"><div class="label">exporter: store / instance</div>'
              f'<div class="value ok">{store_up:g} / {instance_up:g}</div></div>')
    open_rows = "".join(
        f"<tr><td>{lb['entity']}</td><td>{lb['kind']}</td><td>{v:g}</td></tr>"
        for lb, v in s["safetyamp_open_failures"] if v
    )
    ledger_rows = "".join(
        f"<tr><td>{lb['entity']}</td><td>{lb['action']}</td><td>{lb['status']}</td><td>{v:g}</td></tr>"
        for lb, v in s["safetyamp_ledger_writes_total"]
    )
    jobs = "".join(
        f"<tr><td>{lb['job']}</td><td>{lb['status']}</td></tr>" for lb, v in s["safetyamp_job_last_run_status"] if v == 1
    )
    automation = "".join(
        f"<tr><td>{lb['type']}</td><td>{lb['name']}</td><td>{'running' if v else 'stopped'}</td></tr>"
        for lb, v in s["safetyamp_automation_running"]
    )
    excerpt = "\n".join(line for line in text.splitlines() if line.startswith(("safetyamp_sink_last", "safetyamp_open_failures{entity=\"users\"")))
    return f"""<!doctype html><html><head><style>
body {{ background:#111217; color:#ccccdc; font:13px system-ui, sans-serif; margin:16px; width:1320px; }}
h1 {{ font-size:16px; margin:0 0 10px; }} h2 {{ font-size:13px; margin:0 0 8px; color:#9fa7b3; }}
.row {{ display:flex; gap:10px; margin-bottom:10px; }} .panel {{ background:#181b1f; border:1px solid #2c3235; padding:10px; }}
.tile {{ background:#181b1f; border:1px solid #2c3235; padding:8px 12px; flex:1; }}
.label {{ color:#9fa7b3; font-size:12px; }} .value {{ font-size:26px; font-weight:600; margin-top:4px; }}
.ok {{ color:#73bf69; }} .warn {{ color:#f2cc0c; }} svg text {{ fill:#ccccdc; font-size:12px; }}
table {{ border-collapse:collapse; }} td {{ padding:2px 10px 2px 0; }} pre {{ font-size:11px; margin:0; color:#9fa7b3; }}
</style></head><body>
<h1>SafetyAmp sync: <code>safetyamp-pipeline metrics --once</code> after two sandbox syncs</h1>
<div class="row">{tiles}</div>
<div class="row">
 <div class="panel"><h2>safetyamp_sink_records (last run, unchanged left out)</h2>{_bars(records)}</div>
 <div class="panel"><h2>safetyamp_open_failures (non-zero)</h2><table>{open_rows}</table>
  <h2 style="margin-top:12px">safetyamp_job_last_run_status == 1</h2><table>{jobs}</table>
  <h2 style="margin-top:12px">safetyamp_automation_running (sandbox: stopped)</h2><table>{automation}</table></div>
 <div class="panel"><h2>safetyamp_ledger_writes_total</h2><table>{ledger_rows}</table></div>
</div>
<div class="panel"><h2>exposition text (excerpt)</h2><pre>{html.escape(excerpt)}</pre></div>
</body></html>"""


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="metrics-picture-") as tmp:
        sandbox, run = start_run(Path(tmp))
        try:
            assert run.sync().success
            reject_one_user(run)
            assert run.sync().success
            text = metrics_text(run.env)
            now = time.time()
        finally:
            run.instance.dispose()
            sandbox.stop()
    page_html = render_html(text, now)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1352, "height": 700})
        page.set_content(page_html)
        page.screenshot(path=str(OUT), full_page=True)
        browser.close()
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
