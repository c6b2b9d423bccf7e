"""Headless Chromium for the dashboard tests and bench/run.sh ui, through Selenium.

Debian's packages (chromium, chromium-driver, python3-selenium; scripts/install-deps) are
used. python3-selenium lives in the system interpreter's dist-packages; when the tests run
under another Python of the same version (pyenv), that folder is appended to sys.path so its
pure-Python modules are found.
"""
import os
import shutil
import sys

try:
    import selenium  # noqa: F401
except ImportError:  # pragma: no cover - depends on the interpreter
    for extra in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(os.path.join(extra, "selenium")) and extra not in sys.path:
            sys.path.append(extra)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402,F401
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402,F401
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402,F401


def find_binary(*names):
    for n in names:
        path = shutil.which(n) or (n if os.path.isabs(n) and os.path.exists(n) else None)
        if path:
            return path
    raise RuntimeError(f"none of {names} found: apt-get install chromium chromium-driver (scripts/install-deps)")


def chromium(width=1400, height=1000):
    """A headless Chromium WebDriver with the browser console log kept (get_log('browser'))."""
    opts = Options()
    opts.binary_location = os.environ.get("FLOWMESH_CHROMIUM") or find_binary("/usr/lib/chromium/chromium", "chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("FLOWMESH_CHROMEDRIVER") or find_binary("chromedriver", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def artifacts_dir(name):
    """Where screenshots go: $FLOWMESH_TEST_ARTIFACTS/name, else <build>/test-artifacts/name."""
    root = os.environ.get("FLOWMESH_TEST_ARTIFACTS")
    if not root:
        bin_dir = os.environ.get("FLOWMESH_BIN_DIR", os.path.join(os.path.dirname(__file__), "../../build/release/bin"))
        root = os.path.join(os.path.dirname(os.path.abspath(bin_dir)), "test-artifacts")
    path = os.path.join(root, name)
    os.makedirs(path, exist_ok=True)
    return path
