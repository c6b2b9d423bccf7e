"""The dashboard (/ui) in a real browser (headless Chromium via Selenium) against a real
stack: sign in with an organisation's key, submit a workflow through the page's form, watch
its task graph reach DONE live, open a task's logs, result and attempts, the trace timeline,
the workers view; an admin key sees quotas; another organisation's key sees none of it.
Screenshots of every step land in <build>/test-artifacts/ui (or $FLOWMESH_TEST_ARTIFACTS/ui).
Every wait is on a DOM condition (WebDriverWait), never a fixed sleep."""
import glob
import json
import os
import unittest

from browser import By, TimeoutException, WebDriverWait, artifacts_dir, chromium
from harness import Stack, echo_workflow

API = "/api/v1"
USER_SCOPES = ("workflow:read,workflow:write,workflow:cancel,task:read,task:cancel,"
               "result:read,result:write,worker:read,node:read,system:read")
WAIT_S = 90


class UiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = artifacts_dir("ui")
        for old in glob.glob(os.path.join(cls.out, "*.png")):
            os.remove(old)
        s = cls.stack = Stack()
        try:
            s.up()
            s.workers_up(1)
            cls.keys = {}
            for org in ("alpha", "beta"):
                s.cli("--json", "admin", "org", "create", org, "--max-queued-tasks", "500")
                key = json.loads(s.cli("--json", "admin", "key", "create", "--org", org,
                                       "--scopes", USER_SCOPES).stdout)
                cls.keys[org] = key["key"]
            cls.driver = chromium()
        except BaseException:
            s.close()
            raise
        cls.shot_no = 0

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "driver", None):
                cls.driver.quit()
        finally:
            cls.stack.close()

    # ---- helpers
    def shot(self, name):
        UiTest.shot_no += 1
        self.driver.save_screenshot(os.path.join(self.out, f"{UiTest.shot_no:02d}-{name}.png"))

    def wait(self, condition, what, timeout=WAIT_S):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(condition)
        except TimeoutException:
            self.shot("timeout-" + what.replace(" ", "-")[:40])
            logs = "\n".join(str(e) for e in self.driver.get_log("browser"))
            body = self.driver.find_element(By.TAG_NAME, "body").text
            raise AssertionError(f"timed out waiting for {what} at {self.driver.current_url}\n"
                                 f"page:\n{body[:3000]}\nconsole:\n{logs}\n"
                                 f"server log:\n{self.stack.log_tail('server')}") from None

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text_of(self, selector):
        found = self.css(selector)
        return found[0].text if found else ""

    def go(self, fragment):
        self.driver.get(f"{self.stack.url}/ui/#{fragment}")

    def sign_in(self, key):
        self.go("/login")
        self.wait(lambda d: self.css("#api-key"), "the sign-in form")
        self.css("#api-key")[0].send_keys(key)
        self.css("#login-submit")[0].click()
        self.wait(lambda d: self.css("#workflow-list table, #workflow-list .empty"), "the workflow list after sign-in")

    def sign_out(self):
        self.css("#signout")[0].click()
        self.wait(lambda d: self.css("#api-key"), "the sign-in form after sign-out")
        self.assertIsNone(self.driver.execute_script("return sessionStorage.getItem('flowmesh.apiKey')"))

    def assert_no_csp_violations(self):
        bad = [e for e in self.driver.get_log("browser")
               if "Content Security Policy" in e.get("message", "") or "Uncaught" in e.get("message", "")]
        self.assertEqual(bad, [], "the page broke its CSP or threw")

    # ---- the tour
    def test_dashboard(self):
        d = self.driver
        s = self.stack
        # The page itself needs no key; it asks for one.
        self.go("/workflows")
        self.wait(lambda d: self.css("#api-key"), "the redirect to sign-in")
        self.shot("sign-in")
        # A wrong key is refused on the page.
        self.css("#api-key")[0].send_keys("fmk_not_a_key")
        self.css("#login-submit")[0].click()
        self.wait(lambda d: "does not accept" in self.text_of(".message"), "the refusal of a wrong key")

        # Org alpha signs in and submits the form's example (a 4-task diamond), each task
        # sleeping a little so the graph is shown before the workflow ends.
        self.sign_in(self.keys["alpha"])
        self.shot("workflows-empty")
        self.assertEqual(d.execute_script("return sessionStorage.getItem('flowmesh.apiKey')"), self.keys["alpha"])
        example = self.css("#submit-text")[0].get_attribute("value")
        self.assertIn("hello-diamond", example)
        slow = example.replace("  taskType: echo\n", "  taskType: echo\n  echo: {sleep_seconds: 2}\n")
        self.assertNotEqual(slow, example)
        d.execute_script("arguments[0].value = arguments[1]", self.css("#submit-text")[0], slow)
        self.css("#validate-button")[0].click()
        self.wait(lambda d: "Valid: 4 task(s)" in self.text_of("#submit-message"), "the form's validation")
        self.css("#submit-button")[0].click()
        self.wait(lambda d: self.css("#dag[data-rendered='true']"), "the task graph of the submitted workflow")
        self.shot("dag-live")
        # Shown before the end: what follows comes over the event stream, not a reload.
        self.assertNotEqual(len(self.css("#dag .node.st-DONE")), 4)
        self.assertEqual(self.text_of("#wf-live"), "live")
        wf_id = d.current_url.rsplit("/", 1)[-1]
        self.assertTrue(wf_id.startswith("wfl-"), d.current_url)
        self.assertEqual(self.css("#dag")[0].get_attribute("data-nodes"), "4")
        self.assertEqual(len(self.css("#dag .node")), 4)
        self.assertTrue(self.css("#dag path.edge"))
        # Live status: every node turns DONE without reloading the page.
        self.wait(lambda d: len(self.css("#dag .node.st-DONE")) == 4 and self.text_of("#wf-status") == "DONE",
                  "every task and the workflow to show DONE")
        self.shot("dag-done")
        self.assertEqual(s.api("GET", f"{API}/workflows/{wf_id}", key=self.keys["alpha"])["status"], "DONE")

        # The list shows it with its status.
        self.go("/workflows?status=DONE")
        self.wait(lambda d: self.css(f"#workflow-list tr[data-workflow-id='{wf_id}'][data-status='DONE']"),
                  "the workflow in the DONE list")
        self.shot("workflows-list")

        # A task: its logs end, its result and attempt are shown.
        self.go(f"/workflows/{wf_id}")
        self.wait(lambda d: self.css("#dag[data-rendered='true'] .node.st-DONE"), "the graph again")
        last = [n for n in self.css("#dag .node") if n.text.startswith("d")][0]
        task_id = last.get_attribute("data-task-id")
        # An output file for the files table (as a worker would upload it).
        boundary = "fmUiBoundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"out/report.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\nalpha's report\r\n--{boundary}--\r\n").encode()
        s.api("POST", f"{API}/results/{task_id}/files", body, key=self.keys["alpha"], expect=201,
              headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        last.click()
        self.wait(lambda d: d.current_url.endswith(f"#/tasks/{task_id}"), "the task page")
        self.wait(lambda d: self.text_of("#log-state") == "ended" and self.css("#task-logs .line"),
                  "the task's log stream to end")
        logs = self.text_of("#task-logs")
        self.assertIn("DONE", logs)
        self.wait(lambda d: "joined" in self.text_of("#task-result"), "the task's result")
        self.wait(lambda d: self.css("#task-attempts tbody tr"), "the attempt row")
        self.assertIn("wkr-", self.text_of("#task-attempts"))
        self.assertEqual(self.text_of("#task-status"), "DONE")
        self.wait(lambda d: "out/report.txt" in self.text_of("#task-files"), "the task's output file")
        self.shot("task")

        # The trace timeline with its critical path.
        self.go(f"/workflows/{wf_id}/trace")
        self.wait(lambda d: self.css("#timeline .trace-row"), "the trace timeline")
        self.assertEqual(len(self.css("#timeline .trace-row")), 4)
        self.assertTrue(self.css("#timeline .trace-row.critical"))
        self.assertTrue(self.css("tr.critical-row"))
        self.shot("trace")

        # Workers: the stack's worker with its slots.
        self.css("#nav a[data-nav='workers']")[0].click()
        self.wait(lambda d: self.css(".worker-row[data-status='IDLE'], .worker-row[data-status='BUSY']"),
                  "a live worker in the workers view")
        self.assertTrue(self.css(".node-row"))
        self.shot("workers")
        # Cancelling from the graph view: the stream brings every task to CANCELLED.
        slow = s.api("POST", f"{API}/workflows", echo_workflow("ui-slow", sleep=60, items=("a", "b")),
                     key=self.keys["alpha"], expect=201)["workflow_id"]
        self.go(f"/workflows/{slow}")
        self.wait(lambda d: self.css("#dag[data-rendered='true']") and self.css("#wf-cancel:not([hidden])"),
                  "the running workflow's graph with its cancel button")
        self.css("#wf-cancel")[0].click()
        self.wait(lambda d: self.text_of("#wf-status") == "CANCELLED" and not self.css("#dag .node:not(.st-CANCELLED)"),
                  "the cancelled workflow")
        self.assertTrue(self.css("#wf-cancel[hidden]"))
        self.shot("cancelled")
        self.assert_no_csp_violations()
        self.sign_out()

        # Another organisation sees none of it: not in the list, 404 on the pages.
        self.sign_in(self.keys["beta"])
        self.wait(lambda d: self.css("#workflow-list .empty"), "beta's empty list")
        self.assertFalse(self.css(f"tr[data-workflow-id='{wf_id}']"))
        self.shot("beta-list")
        self.go(f"/workflows/{wf_id}")
        self.wait(lambda d: "404" in self.text_of(".error"), "beta's 404 on alpha's workflow")
        self.assertFalse(self.css("#dag"))
        self.go(f"/tasks/{task_id}")
        self.wait(lambda d: "404" in self.text_of(".error"), "beta's 404 on alpha's task")
        self.assertNotIn("joined", d.find_element(By.TAG_NAME, "body").text)
        self.shot("beta-404")
        self.sign_out()

        # The admin key: every organisation in the list filter, usage and quotas.
        self.sign_in(s.api_key)
        self.wait(lambda d: self.css("#filter-org"), "the organisation filter for admins")
        # Workflows stay isolated even from the operator (the API's rule); usage is not.
        self.assertFalse(self.css(f"tr[data-workflow-id='{wf_id}']"))
        self.css("#nav a[data-nav='usage']")[0].click()
        self.wait(lambda d: self.css("#quotas tbody tr") and self.css("#usage-totals table"), "usage and quotas")
        self.assertIn("500", self.text_of("#quotas"))
        self.assertIn("alpha", self.text_of("#usage-totals"))
        self.shot("usage")
        self.assert_no_csp_violations()

    def test_static_files_need_no_key_and_have_headers(self):
        status, headers, body = self.stack.request("GET", "/ui/", key=None)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("script-src 'self'", headers["Content-Security-Policy"])
        status, headers, _ = self.stack.request("GET", "/ui/js/main.js", key=None)
        self.assertEqual((status, headers["Content-Type"]), (200, "text/javascript; charset=utf-8"))
        self.assertEqual(self.stack.request("GET", "/ui/nope.js", key=None)[0], 404)
        # The data is not public: the API still wants the key.
        self.assertEqual(self.stack.request("GET", f"{API}/workflows", key=None)[0], 401)


if __name__ == "__main__":
    unittest.main()
