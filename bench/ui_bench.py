"""bench/run.sh ui: time to first render of a 1,000-task workflow's task graph in the
dashboard, in headless Chromium (tests/e2e/browser.py).

A private stack with one CPU worker runs a generated 1,000-task echo workflow (BENCH_UI_LAYERS
layers; each task depends on one or two tasks of the layer before) to DONE. Then, BENCH_UI_RUNS
times, a fresh page load of /ui/#/workflows/ID: the page fetches the task list, lays out the
graph and draws it; the figure is the page's own mark (performance.now() from navigation start
after the frame that follows the SVG holding every node). Prints the median and the spread.
"""
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from browser import By, WebDriverWait, artifacts_dir, chromium  # noqa: E402
from harness import Stack  # noqa: E402

N_TASKS = int(os.environ.get("BENCH_UI_TASKS", "1000"))
LAYERS = int(os.environ.get("BENCH_UI_LAYERS", "20"))
RUNS = int(os.environ.get("BENCH_UI_RUNS", "5"))


def layered_workflow(n, layers, seed=7):
    rng = random.Random(seed)
    per = max(1, n // layers)
    lines = ["apiVersion: flowmesh/v1", "kind: Workflow", "metadata: {name: ui-bench}", "spec:",
             "  taskType: echo", "  graph:", "    nodes:"]
    for i in range(n):
        layer = i // per
        deps = []
        if layer > 0:
            prev = range((layer - 1) * per, min(layer * per, n))
            deps = sorted(set(rng.sample(list(prev), k=min(len(prev), rng.choice((1, 2))))))
        lines.append(f"      - name: t{i}")
        if deps:
            lines.append(f"        dependsOn: [{', '.join(f't{d}' for d in deps)}]")
        lines.append(f"        spec: {{data: {{type: list, items: [\"x{i}\"]}}}}")
    return "\n".join(lines) + "\n"


def main():
    s = Stack()
    driver = None
    try:
        s.up()
        s.workers_up(1)
        wf = s.submit(layered_workflow(N_TASKS, LAYERS))["workflow_id"]
        s.wait_workflow(wf, timeout=900)
        driver = chromium()
        driver.get(f"{s.url}/ui/")
        driver.execute_script("sessionStorage.setItem('flowmesh.apiKey', arguments[0])", s.api_key)
        times, layout_ms, draw_ms = [], [], []
        for run in range(RUNS + 1):  # the first load warms the browser's caches; not counted
            # A different query string makes each a full navigation (not a hash change).
            driver.get(f"{s.url}/ui/?run={run}#/workflows/{wf}")
            WebDriverWait(driver, 120, poll_frequency=0.05).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#dag[data-rendered='true']"))
            nodes = driver.execute_script("return document.querySelectorAll('#dag .node').length")
            assert nodes == N_TASKS, f"{nodes} nodes drawn, expected {N_TASKS}"
            ms = float(driver.execute_script("return document.body.dataset.dagRenderedMs"))
            svg = driver.find_element(By.ID, "dag")
            if run == 0:
                driver.save_screenshot(os.path.join(artifacts_dir("bench-ui"), "dag-1000.png"))
                continue
            times.append(ms)
            layout_ms.append(float(svg.get_attribute("data-layout-ms")))
            draw_ms.append(float(svg.get_attribute("data-draw-ms")))
        print(f"ui_dag_tasks={N_TASKS}")
        print(f"ui_dag_first_render_ms={statistics.median(times):.0f}")
        print(f"ui_dag_first_render_ms_min={min(times):.0f}")
        print(f"ui_dag_first_render_ms_max={max(times):.0f}")
        print(f"ui_dag_layout_ms={statistics.median(layout_ms):.1f}")
        print(f"ui_dag_draw_ms={statistics.median(draw_ms):.1f}")
        print(f"ui_dag_runs={len(times)}")
    finally:
        if driver is not None:
            driver.quit()
        s.close()


if __name__ == "__main__":
    main()
