"""The MLflow UI and the HTML report, checked in headless Chromium as a user would look at them.

One small search logs to a real ``mlflow server``; the tests then open the experiment, expand
the parent run, add the ``loss.family`` and objective columns, compare two trials, and look at
the parent's artifacts. Screenshots go to ``$LOSSEARCH_SCREENSHOTS`` (``make screenshots``
refreshes the ones in ``docs/images``) or to a temp folder.
"""

import time

import mlflow
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import lossearch
from lossearch.cli import main as cli_main
from tests.browser import chromium, screenshot_folder, wait_for
from tests.mlflow_server import MlflowServer
from tests.search_helpers import dense_model, digits

pytestmark = pytest.mark.integration  # a real browser; make test and CI run it

CLASS_NAMES = [f"digit{c}" for c in range(10)]
EXPERIMENT = "digits-loss-search"


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A finished 6-trial search logged to a real MLflow server and a SQLite study."""
    folder = tmp_path_factory.mktemp("ui")
    storage = f"sqlite:///{folder}/study.db"
    with MlflowServer(folder) as server:
        result = lossearch.optimize(
            dense_model(64, 10),
            digits(),
            space="quick",
            n_trials=6,
            epochs=3,
            batch_size=64,
            class_names=CLASS_NAMES,
            storage=storage,
            study_name="digits",
            tracking_uri=server.uri,
            experiment_name=EXPERIMENT,
            show_progress=False,
            seed=0,
            cv=None,  # one hold-out and one confirmation seed: the pages, not the pick, matter
            confirm_seeds=1,
            registered_model_name="digits-loss",
        )
        client = mlflow.MlflowClient(server.uri)
        experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
        children = client.search_runs(
            [experiment_id], f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
        )
        yield {
            "uri": server.uri,
            "experiment_id": experiment_id,
            "result": result,
            "children": sorted(children, key=lambda r: int(r.data.tags["trial_number"])),
            "storage": storage,
            "folder": folder,
        }


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return screenshot_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _click_text(driver, text: str, within=None):
    root = within or driver
    element = wait_for(
        driver,
        lambda d: root.find_element(By.XPATH, f".//*[normalize-space(text())='{text}']"),
        what=repr(text),
    )
    element.click()
    return element


def _model_training_view(driver):
    """MLflow 3's switch from its GenAI pages, and the assistant side panel closed."""
    _click_text(driver, "Model training")
    for close in driver.find_elements(By.CSS_SELECTOR, "button[aria-label=Close]"):
        close.click()


def _rows(driver) -> dict[str, str]:
    """``{run id: run name}`` of the rows the runs table shows now."""
    rows = driver.find_elements(By.CSS_SELECTOR, ".ag-pinned-left-cols-container [role=row]")
    return {r.get_attribute("row-id"): r.text for r in rows if r.get_attribute("row-id")}


def _cell(driver, run_id: str, column: str) -> str:
    return driver.find_element(
        By.CSS_SELECTOR, f'[row-id="{run_id}"] [role=gridcell][col-id="{column}"]'
    ).text


def _grid_cells(driver, grid) -> dict[int, list[str]]:
    """``{row offset: [cell texts, left to right]}`` of a react-virtualized grid."""
    cells = driver.execute_script(
        "return [...arguments[0].querySelectorAll('[style*=\"top\"]')]"
        ".filter(c => c.parentElement.classList.contains("
        "'ReactVirtualized__Grid__innerScrollContainer'))"
        ".map(c => [c.offsetTop, c.offsetLeft, c.innerText.trim()])",
        grid,
    )
    rows: dict[int, list[tuple[int, str]]] = {}
    for top, left, text in cells:
        rows.setdefault(top, []).append((left, text))
    return {top: [text for _, text in sorted(row)] for top, row in rows.items()}


def _ui_number(value: float) -> str:
    """How MLflow's compare table prints a metric (three decimals, no trailing zeros)."""
    return f"{round(value, 3):.3f}".rstrip("0").rstrip(".") or "0"


def test_the_runs_table_nests_trials_under_the_search_with_family_and_objective(
    search, browser, shots
):
    parent = search["result"].mlflow_run_id
    children = {run.info.run_id: run for run in search["children"]}
    assert len(children) == 6
    browser.get(f"{search['uri']}/#/experiments/{search['experiment_id']}/runs")
    wait_for(browser, lambda d: parent in _rows(d), what="the parent run's row")
    _model_training_view(browser)

    # Children are nested: collapsed, only the parent shows; expanded, all six under it.
    assert set(_rows(browser)) == {parent}
    browser.find_element(
        By.CSS_SELECTOR, f'.ag-pinned-left-cols-container [row-id="{parent}"] button'
    ).click()
    wait_for(browser, lambda d: set(_rows(d)) == {parent, *children}, what="the child runs")
    for rid, name in _rows(browser).items():  # each named by its number and loss
        if rid != parent:
            run = children[rid]
            number, family = int(run.data.tags["trial_number"]), run.data.params["loss.family"]
            assert f"{number:03d} {family}(" in name, name

    # Add the loss family (a parameter) and the objective (a metric) as columns.
    _click_text(browser, "Columns")
    dialog = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[role=dialog]"))
    dialog.find_element(By.CSS_SELECTOR, 'span[title="loss.family"]').click()
    # "objective" is both a metric and the parent's parameter; Metrics come first.
    dialog.find_elements(By.CSS_SELECTOR, 'span[title="objective"]')[0].click()
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    wait_for(
        browser,
        lambda d: (
            {"loss.family", "objective"}
            <= {h.text for h in d.find_elements(By.CSS_SELECTOR, "[role=columnheader]")}
        ),
        what="the loss.family and objective columns",
    )
    for run_id, run in children.items():
        assert _cell(browser, run_id, "params.`loss.family`") == run.data.params["loss.family"]
        shown = _cell(browser, run_id, "metrics.`objective`")
        assert float(shown.rstrip(".…")) == pytest.approx(run.data.metrics["objective"], abs=1e-3)
    browser.save_screenshot(str(shots / "mlflow_runs.png"))


def test_comparing_two_trials_shows_their_loss_params_and_per_class_recalls(search, browser, shots):
    first, second = search["children"][1], search["children"][3]  # two different recipes
    browser.get(f"{search['uri']}/#/experiments/{search['experiment_id']}/runs")
    parent = search["result"].mlflow_run_id
    wait_for(browser, lambda d: parent in _rows(d), what="the parent run's row")
    _model_training_view(browser)
    if set(_rows(browser)) == {parent}:
        browser.find_element(
            By.CSS_SELECTOR, f'.ag-pinned-left-cols-container [row-id="{parent}"] button'
        ).click()
    for run in (first, second):
        row = wait_for(
            browser,
            lambda d, run=run: d.find_element(
                By.CSS_SELECTOR, f'.ag-pinned-left-cols-container [row-id="{run.info.run_id}"]'
            ),
            what=f"row of {run.info.run_name}",
        )
        row.find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()
    _click_text(browser, "Compare")
    wait_for(browser, lambda d: "compare-runs" in d.current_url, what="the compare view")
    page = wait_for(
        browser,
        lambda d: (
            (text := d.find_element(By.TAG_NAME, "body").text) and "loss.family" in text and text
        ),
        what="the compared parameters",
    )
    assert "Comparing 2 Runs" in page
    for run in (first, second):
        assert run.info.run_name in page
        for key in ("loss.family", "loss.weights", "loss.description"):
            assert f"{run.data.params[key]}" in page, key

    # The metrics table scrolls on its own; wheel down to the per-class recalls.
    names, values = wait_for(
        browser,
        lambda d: (
            (grids := d.find_elements(By.CSS_SELECTOR, ".ReactVirtualized__Grid"))
            and len(grids) == 2
            and grids
        ),
        what="the compared metrics",
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", values)

    def wheel_to_recalls(d):
        # Small steps, stopping short of the bottom: there MLflow's two grids fall out of line.
        ActionChains(d).scroll_from_origin(ScrollOrigin.from_element(values), 0, 80).perform()
        return "recall.digit9" in names.text

    wait_for(browser, wheel_to_recalls, what="the per-class recalls")
    time.sleep(0.5)
    # Both grids render a window of rows: pair names with values by their row offset.
    name_at = _grid_cells(browser, names)
    values_at = _grid_cells(browser, values)
    recalls = {top: name for top, (name,) in name_at.items() if name.startswith("recall.")}
    assert len(recalls) >= 3
    paired = {name: values_at[top] for top, name in recalls.items() if top in values_at}
    assert len(paired) >= 3, (recalls, values_at)
    for name, shown in paired.items():
        assert shown == [_ui_number(run.data.metrics[name]) for run in (first, second)], name
    browser.save_screenshot(str(shots / "mlflow_compare.png"))


def test_the_parent_run_lists_the_best_loss_report_and_plots(search, browser, shots):
    parent = search["result"].mlflow_run_id
    browser.get(f"{search['uri']}/#/experiments/{search['experiment_id']}/runs/{parent}/artifacts")
    wait_for(
        browser,
        lambda d: "best_loss.json" in d.find_element(By.TAG_NAME, "body").text,
        what="the artifact list",
    )
    _click_text(browser, "plots")
    listed = wait_for(
        browser,
        lambda d: (
            (text := d.find_element(By.TAG_NAME, "body").text)
            and "per_class_recall.png" in text
            and text
        ),
        what="the plots folder",
    )
    for name in (
        "best_loss.json",
        "report.html",
        "trials.csv",
        "optimization_history.png",
        "confusion_matrix.png",
    ):
        assert name in listed, name
    _click_text(browser, "per_class_recall.png")
    wait_for(
        browser,
        lambda d: any(
            d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
            for img in d.find_elements(By.CSS_SELECTOR, "img[src^=blob]")
        ),
        what="the per-class recall plot",
    )
    browser.save_screenshot(str(shots / "mlflow_artifacts.png"))


def test_the_parent_run_shows_the_refit_model_logged_and_registered(search, browser, shots):
    parent = search["result"].mlflow_run_id
    browser.get(f"{search['uri']}/#/experiments/{search['experiment_id']}/runs/{parent}")
    overview = wait_for(
        browser,
        lambda d: (
            (text := d.find_element(By.TAG_NAME, "body").text)
            and "Logged models (1)" in text
            and text
        ),
        what="the parent run's logged model",
    )
    assert "digits-loss" in overview and "v1" in overview  # registered from the search
    heading = browser.find_element(By.XPATH, "//*[starts-with(text(), 'Logged models')]")
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", heading)
    browser.save_screenshot(str(shots / "mlflow_model.png"))
    browser.get(f"{search['uri']}/#/models/digits-loss")
    wait_for(
        browser,
        lambda d: "Version 1" in d.find_element(By.TAG_NAME, "body").text,
        what="the registered model's version",
    )


def _check_report_page(browser, path, result):
    browser.get(path.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    alts = {img.get_attribute("alt") for img in images}
    assert {"Optimisation history", "Per-class recall", "Confusion matrix"} <= alts
    for img in images:
        width = browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", img
        )
        assert width and width > 100, img.get_attribute("alt")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert result.best_config.describe() in text
    assert "CE baseline" in text and "digit9" in text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    return alts


def test_the_html_report_opens_with_every_plot_rendered(search, shots, tmp_path):
    result = search["result"]
    from_result = tmp_path / "report.html"
    result.report(from_result)
    from_study = tmp_path / "from_study.html"
    argv = ["report", "--storage", search["storage"], "--study", "digits", "-o", str(from_study)]
    assert cli_main(argv) == 0
    with chromium(1200, 2400) as browser:
        alts = _check_report_page(browser, from_result, result)
        assert "Parameter importances" in alts
        browser.save_screenshot(str(shots / "report.png"))
        assert _check_report_page(browser, from_study, result) == alts
