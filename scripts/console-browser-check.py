#!/usr/bin/env python3
"""Drives the web console in headless Chromium, as an operator would, and prints what it saw as JSON.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages ended by
a NUL byte on file descriptors 3 and 4), so nothing but Python's standard library and Debian's chromium
package is needed. Used by the test `Integration/Web console`; it asserts on the output.

usage: console-browser-check.py BASE_URL TOKEN SHARD WORKFLOW_ID OUTPUT_DIR
"""
import base64, json, os, subprocess, sys, tempfile, time, urllib.error, urllib.request

base, token, shard, workflow_id, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
os.makedirs(out_dir, exist_ok=True)
browser = os.environ.get("SHARDFLOW_CHROMIUM", "chromium")


class Browser:
    def __init__(self):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        profile = tempfile.mkdtemp(prefix="shardflow-chromium-")

        # Copies above 4 first, so that placing them on 3 and 4 in the child cannot overwrite one another.
        to_chrome_r, from_chrome_w = os.dup(to_chrome_r), os.dup(from_chrome_w)

        def child_fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-pipe", "--window-size=1400,900", "--user-data-dir=" + profile, "about:blank"],
            pass_fds=(3, 4, to_chrome_r, from_chrome_w), preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.buffer = b""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def call(self, method, params=None, session=False, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        raise TimeoutError(method)

    def js(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"waited {timeout} s for: {expression}")

    def go(self, url):
        self.call("Page.navigate", {"url": url}, session=True)

    def screenshot(self, name):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)["data"]
        path = os.path.join(out_dir, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        self.process.kill()
        self.process.wait()


def post(headers, body):
    """A request as a forged page or script elsewhere would send it (urllib sets any header)."""
    request = urllib.request.Request(base + "/console/api/actions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


report = {}
b = Browser()
try:
    started = time.time()
    b.go(base + "/console#/")
    b.wait("document.querySelectorAll('[data-testid=shards] tbody tr').length > 0")
    table = "[...document.querySelectorAll('[data-testid=shards] %s tr')].map(tr => [...tr.cells].map(td => td.textContent))"
    report["header"] = b.js("[...document.querySelectorAll('[data-testid=shards] thead th')].map(th => th.textContent)")
    report["shards"] = b.js(table % "tbody")
    report["total"] = b.js(table % "tfoot")
    report["shardsScreenshot"] = b.screenshot("console-shards.png")

    def act(type_, with_token):
        b.js("document.querySelector('#token').value = %s; delete document.querySelector('#action-result').dataset.http; true"
             % json.dumps(token if with_token else ""))
        b.js("document.querySelector(`button[data-action=%s][data-shard='%d']`).click(); true" % (type_, shard))
        b.wait("document.querySelector('#confirm').classList.contains('open')")
        b.js("document.querySelector('#confirm-yes').click(); true")
        b.wait("document.querySelector('#action-result').dataset.http", timeout=60)
        return b.js("({http: document.querySelector('#action-result').dataset.http, status: document.querySelector('#action-result').dataset.status, text: document.querySelector('#action-result').textContent})")

    epoch_before = int(b.js("document.querySelector(`tr[data-shard='%d']`).cells[1].textContent" % shard))
    report["withoutToken"] = act("bumpEpoch", False)
    report["withToken"] = act("bumpEpoch", True)
    # The view updates by itself: the shard's epoch goes up without a reload.
    b.wait("Number(document.querySelector(`tr[data-shard='%d']`).cells[1].textContent) === %d" % (shard, epoch_before + 1), timeout=20)
    report["epochBefore"] = epoch_before
    report["epochAfter"] = int(b.js("document.querySelector(`tr[data-shard='%d']`).cells[1].textContent" % shard))
    report["executorAfterBump"] = b.js("document.querySelector(`tr[data-shard='%d']`).cells[2].textContent" % shard)
    report["resume"] = act("resumeExecutors", True)
    report["shardsAfterActionsScreenshot"] = b.screenshot("console-shards-after-actions.png")

    b.go(base + "/console#/workflow/" + workflow_id)
    b.wait("document.querySelectorAll('[data-testid=journal] tbody tr').length > 0")
    report["workflowStatus"] = b.js("document.querySelector('[data-testid=workflow-status]').textContent")
    report["journal"] = b.js("[...document.querySelectorAll('[data-testid=journal] tbody tr')].map(tr => [...tr.cells].map(td => td.textContent))")
    report["replays"] = b.js("[...document.querySelectorAll('[data-testid=replays] tbody tr')].map(tr => tr.cells[0].textContent)")
    report["workflowScreenshot"] = b.screenshot("console-workflow.png")

    b.go(base + "/console#/lists")
    b.wait("document.querySelector('[data-testid=parked]') !== null")
    report["parked"] = b.js("[...document.querySelectorAll('[data-testid=parked] tbody tr')].map(tr => tr.cells[1].textContent)")
    report["listsScreenshot"] = b.screenshot("console-lists.png")
    report["browserSeconds"] = round(time.time() - started, 1)
finally:
    b.close()

# Requests that do not come from the console's own page are refused, even with the token.
auth = {"Authorization": "Bearer " + token}
action = {"type": "bumpEpoch", "shard": shard}
report["forgedNoHeader"] = post(auth, action)
report["forgedOtherOrigin"] = post({**auth, "X-Shardflow-Console": "1", "Origin": "http://evil.example"}, action)
report["forgedCrossSite"] = post({**auth, "X-Shardflow-Console": "1", "Sec-Fetch-Site": "cross-site"}, action)
report["wrongToken"] = post({"Authorization": "Bearer wrong", "X-Shardflow-Console": "1"}, action)
print(json.dumps(report))
