#!/usr/bin/env python3
"""Renders moeplan report pages in headless Chromium and checks what a person would see.

For each page: a screenshot that is not blank (enough non-white pixels and colours), and no
network request from the page while it loaded. The script drives Chromium over the DevTools
protocol (--remote-debugging-pipe: JSON messages on two pipes, no websocket) and records the
page's own Network.requestWillBeSent events, so Chromium's background traffic (updates,
time) does not count and every fetch the page makes does. A control page that fetches an
image must be seen fetching it: a check that cannot fail proves nothing.

  screenshot.py --chromium chromium --out DIR PAGE.html[:HEIGHT] ...

Prints one line per page; exit status 1 on any failure.
"""
import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time

from PIL import Image


class Browser:
    """Chromium with the DevTools protocol on fds 3 (commands in) and 4 (events out)."""

    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child sees them as fds 3 and 4 (copied out of the way first: the pipes may
        # themselves be 3 or 4); subprocess then closes every other fd.
        def child_fds():
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
             "--user-data-dir=" + profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child_fds,
            pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            if time.time() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_chrome, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, session, timeout=60):
        deadline = time.time() + timeout
        for i, m in enumerate(self.events):
            if m.get("method") == method and m.get("sessionId") == session:
                del self.events[i]
                return m
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method and m.get("sessionId") == session:
                return m
            self.events.append(m)

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def render(browser, page, png, height):
    """Loads `page` in a fresh tab 1280 wide; returns the URLs it requested besides itself."""
    url = "file://" + os.path.abspath(page)
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.call("Network.enable", session=session)
    browser.call("Page.enable", session=session)
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
                 session=session)
    browser.events = [m for m in browser.events if m.get("sessionId") != session]
    browser.call("Page.navigate", {"url": url}, session=session)
    browser.wait_event("Page.loadEventFired", session)
    time.sleep(0.3)  # requests a page starts after its load event
    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    browser.call("Network.disable", session=session)  # flushes the events before it
    requested = [m["params"]["request"]["url"] for m in browser.events
                 if m.get("sessionId") == session and m.get("method") == "Network.requestWillBeSent"]
    browser.events = [m for m in browser.events if m.get("sessionId") != session]
    browser.call("Target.closeTarget", {"targetId": target})
    return [u for u in requested if u != url]


def blankness(png):
    """The image's size, its share of pixels that are not near-white, distinct colours."""
    img = Image.open(png).convert("RGB")
    w, h = img.size
    pixels = list(img.resize((w // 4, h // 4)).getdata())
    inked = sum(1 for (r, g, b) in pixels if min(r, g, b) < 235)
    return img.size, inked / len(pixels), len(set(pixels))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--out", required=True)
    ap.add_argument("pages", nargs="+", help="PAGE.html[:HEIGHT] (height in pixels, default 2400)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = False
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(args.chromium, profile)
        try:
            control = os.path.join(args.out, "control.html")
            with open(control, "w") as f:
                f.write('<!DOCTYPE html><html><body><p>control</p>'
                        '<img src="http://moeplan-report-control.invalid/x.png"></body></html>')
            seen = render(browser, control, os.path.join(args.out, "control.png"), 300)
            if not any("moeplan-report-control.invalid" in u for u in seen):
                print("FAIL control: the page's image request was not seen (saw %s); the "
                      "network check would prove nothing" % seen)
                return 1
            # And the blank check must call a near-empty page blank.
            _, inked, colours = blankness(os.path.join(args.out, "control.png"))
            if inked >= 0.03 and colours >= 16:
                print("FAIL control: a near-empty page passed the blank check (%.1f%% inked, %d "
                      "colours)" % (100 * inked, colours))
                return 1
            print("control: a page that fetches is seen fetching (%s); a near-empty page is "
                  "judged blank (%.1f%% of pixels not white, %d colours)" % (seen[0], 100 * inked, colours))
            for spec in args.pages:
                page, _, height = spec.partition(":")
                height = int(height or 2400)
                png = os.path.join(args.out, os.path.splitext(os.path.basename(page))[0] + ".png")
                requests = render(browser, page, png, height)
                size, inked, colours = blankness(png)
                problems = []
                if requests:
                    problems.append("%d network request(s): %s" % (len(requests), "; ".join(requests[:5])))
                if size != (1280, height):
                    problems.append("the screenshot is %dx%d, not 1280x%d" % (size[0], size[1], height))
                if inked < 0.03:
                    problems.append("blank: %.1f%% of pixels not white" % (100 * inked))
                if colours < 16:
                    problems.append("blank: %d colours" % colours)
                failed = failed or bool(problems)
                print("%s %s: %s %dx%d, %.1f%% of pixels not white, %d colours, %d network "
                      "requests%s" % ("FAIL" if problems else "ok", os.path.basename(page),
                                      os.path.basename(png), size[0], size[1], 100 * inked,
                                      colours, len(requests),
                                      (": " + "; ".join(problems)) if problems else ""))
        finally:
            browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
