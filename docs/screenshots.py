"""``make screenshots``: the documentation pictures of the Dagster UI, taken on the sandbox.

Seeds a sandbox in a temporary folder, starts ``dagster-webserver`` and ``dagster-daemon`` on it
(the harness of the e2e webserver test), runs ``safetyamp_sync`` three times through GraphQL with
Vista changes in between (so the sink's plots have points), then drives Debian's headless
Chromium with Playwright (no browser download) and writes ``docs/img/*.png``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import urllib.parse
from contextlib import closing
from pathlib import Path
from typing import Any

from safetyamp_pipeline_tests.e2e.test_webserver import DagsterUI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}
IMG_DIR = Path(__file__).resolve().parent / "img"
EMPLOYEES = 300
SEED = 7
# Vista edits between the syncs: (first names changed, employees terminated) per round. The last
# round's changes table must fit the screenshot.
CHANGE_ROUNDS = ((12, 2), (20, 3))
SINK = "safetyamp/users"
CHECKED_SOURCE = "viewpoint/employees"
GUARD_CHECK = "active_count_stable"
GROUPS_QUERY = "{ assetNodes { groupName } }"


def change_vista(ui: DagsterUI, renames: int, terminations: int, round_number: int) -> None:
    """Rename ``renames`` active employees and terminate ``terminations`` others in Vista."""
    path = ui.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db, db:  # commit, then close
        active = [e for (e,) in db.execute(
            "SELECT Employee FROM bPREH WHERE PRCo = 1 AND TermDate IS NULL ORDER BY Employee"
        )]
        offset = round_number * 50  # each round edits other employees
        renamed = active[offset : offset + renames]
        terminated = active[offset + renames : offset + renames + terminations]
        for number, employee in enumerate(renamed):
            db.execute(
                "UPDATE bPREH SET FirstName = ? WHERE PRCo = 1 AND Employee = ?",
                (f"Renamed{round_number}x{number}", employee),
            )
        for employee in terminated:
            db.execute(
                "UPDATE bPREH SET TermDate = '2026-01-15 00:00:00' WHERE PRCo = 1 AND Employee = ?",
                (employee,),
            )


def prepare(ui: DagsterUI) -> list[str]:
    """The first sync, then one sync after each round of Vista changes; returns the run ids."""
    runs = [ui.sync()]
    for number, (renames, terminations) in enumerate(CHANGE_ROUNDS, start=1):
        change_vista(ui, renames, terminations, number)
        runs.append(ui.sync())
    return runs


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    # The lineage layout in which groups run left to right, like the sync (the UI's "vertical").
    context.add_init_script(
        f"window.localStorage.setItem('asset-graph-direction', {json.dumps(json.dumps('vertical'))});"
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def _open(page: Any, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    hide = page.get_by_text("Hide navigation", exact=True)
    if hide.count() and hide.first.is_visible():
        hide.first.click()
    page.wait_for_load_state("networkidle")


def _asset_url(ui: DagsterUI, asset: str, view: str | None = None) -> str:
    return f"{ui.url}/assets/{asset}" + (f"?view={view}" if view else "")


def shoot_asset_graph(ui: DagsterUI, page: Any, path: Path) -> None:
    """The global asset lineage with every group expanded, zoomed to fit."""
    groups = sorted({node["groupName"] for node in ui.graphql(GROUPS_QUERY)["assetNodes"]})
    expanded = ",".join(f"global@global:{group}" for group in groups)
    _open(page, f"{ui.url}/asset-groups?expanded={urllib.parse.quote(expanded)}")
    page.get_by_text("job_assignments", exact=True).first.wait_for()
    page.get_by_text("user_titles", exact=True).first.wait_for()
    page.locator("[aria-label=panel_show_right]").first.click()  # fold the asset tree away
    page.wait_for_timeout(800)
    page.mouse.dblclick(VIEWPORT["width"] - 30, 130)  # double click on the canvas: zoom to fit
    page.wait_for_timeout(1500)
    page.screenshot(path=path)


def shoot_sink_metadata(ui: DagsterUI, page: Any, path: Path) -> None:
    """The latest materialization of the sink: its counts and the changes table (a UI table)."""
    _open(page, _asset_url(ui, SINK, "events"))
    first_row = page.get_by_text("planned_create", exact=True).first
    first_row.wait_for()
    page.get_by_text("first_name", exact=False).first.wait_for()  # the changes table's fields column
    changes = page.get_by_role("row").filter(has_text="Show schema").first
    changes.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.mouse.wheel(0, -120)
    page.wait_for_timeout(800)
    page.screenshot(path=path)


PROVISION_CONFIG = """ops:
  provision_on_demand:
    config:
      employees: ["{employee}"]
      jobs: []
      vehicles: []
      dry_run: true
"""


def _location(ui: DagsterUI) -> str:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"
    return ui.graphql(query)["workspaceOrError"]["locationEntries"][0]["name"]


def shoot_provision_launchpad(ui: DagsterUI, page: Any, path: Path) -> None:
    """The launchpad of safetyamp_provision_on_demand with one employee's config typed in."""
    employee = _renamed_employee(ui)
    _open(page, f"{ui.url}/locations/{_location(ui)}/jobs/safetyamp_provision_on_demand/playground")
    editor = page.locator(".CodeMirror").first
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(PROVISION_CONFIG.format(employee=employee))
    page.wait_for_timeout(1500)
    page.screenshot(path=path)


def _renamed_employee(ui: DagsterUI) -> str:
    path = ui.env["VIEWPOINT_DB_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT Employee FROM bPREH WHERE FirstName LIKE 'Renamed%' ORDER BY Employee LIMIT 1").fetchone()
    return str(row[0]) if row else "1001"


def shoot_sink_plots(ui: DagsterUI, page: Any, path: Path) -> None:
    """The sink's int metadata plotted over the syncs (Overview > Metadata > Plots)."""
    _open(page, _asset_url(ui, SINK))
    page.get_by_role("button", name="Plots").click()
    page.get_by_text("updated", exact=True).first.wait_for()
    page.get_by_text("Metadata", exact=True).first.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    page.screenshot(path=path)


def shoot_checks(ui: DagsterUI, page: Any, path: Path) -> None:
    """The Vista employee checks, with the blocking guard that stops a run's writes selected."""
    _open(page, _asset_url(ui, CHECKED_SOURCE, "checks"))
    page.get_by_text(GUARD_CHECK, exact=True).first.click()
    page.get_by_text("blocking", exact=True).first.wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    page.screenshot(path=path)


FIRST_SYNC_QUERY = """{ runsOrError(filter: {pipelineName: "safetyamp_sync"}, limit: 10) {
  ... on Runs { results { runId } } } }"""


def shoot_progress_log(ui: DagsterUI, page: Any, path: Path) -> None:
    """The first sync's run log filtered on the sinks' progress lines (done/planned, rate, ETA)."""
    run_id = ui.graphql(FIRST_SYNC_QUERY)["runsOrError"]["results"][-1]["runId"]
    _open(page, f"{ui.url}/runs/{run_id}?logs={urllib.parse.quote('writes (')}")  # the log's text filter
    page.get_by_text("writes (100%)", exact=False).first.wait_for()
    page.wait_for_timeout(1500)
    page.screenshot(path=path)


SHOTS = {
    "asset-graph.png": shoot_asset_graph,
    "sink-metadata.png": shoot_sink_metadata,
    "sink-plots.png": shoot_sink_plots,
    "checks.png": shoot_checks,
    "provision-launchpad.png": shoot_provision_launchpad,
    "progress-log.png": shoot_progress_log,
}


def take_screenshots(ui: DagsterUI, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    ui.graphql("mutation { setNuxSeen }")  # no "join the community" dialog over the pictures
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, shoot in SHOTS.items():
                page = _page(browser)
                shoot(ui, page, out / name)
                page.context.close()
                written.append(out / name)
                print(f"wrote {out / name}")
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMG_DIR, help=f"output folder (default {IMG_DIR})")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp, DagsterUI(
        Path(tmp), employees=EMPLOYEES, seed=SEED
    ) as ui:
        runs = prepare(ui)
        print(f"{len(runs)} syncs done; UI at {ui.url}")
        take_screenshots(ui, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
