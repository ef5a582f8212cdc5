#!/usr/bin/env python3
"""The tests of function @NAME@: python3 test_handler.py (add -v to see each).

1. handler.py run as Runnel runs it (the exec protocol: the sample input on stdin, RUNNEL_* in the
   environment), its stdout and exit status checked; bad input must exit 2.
2. With a `runnel` binary ($RUNNEL, else `runnel` on PATH; skipped without one): `runnel config
   check runnel.yaml`, then the function for real: a stack of its own (`runnel up` on the embedded
   broker, in a scratch state dir) answers `runnel invoke @NAME@` with the sample input.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNEL = os.environ.get("RUNNEL") or shutil.which("runnel")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

with open(os.path.join(HERE, "sample-input.json"), "rb") as f:
    SAMPLE = f.read()
EXPECTED = {"greeting": "Hello, Ada!", "function": "@NAME@", "event": "test-event-1"}


def run_handler(payload: bytes, params: str = '{"greeting": "Hello"}') -> subprocess.CompletedProcess:
    env = dict(os.environ, RUNNEL_ID="test-event-1", RUNNEL_FUNCTION="@NAME@", RUNNEL_ATTEMPT="1",
               RUNNEL_PARAMS=params, RUNNEL_CONTENT_TYPE="application/json")
    return subprocess.run([PYTHON, os.path.join(HERE, "handler.py")], input=payload, capture_output=True,
                          env=env, cwd=HERE, timeout=20, check=False)


class Handler(unittest.TestCase):
    def test_answers_the_sample_input(self):
        run = run_handler(SAMPLE)
        self.assertEqual(run.returncode, 0, run.stderr.decode())
        self.assertEqual(json.loads(run.stdout), EXPECTED)

    def test_takes_its_greeting_from_params(self):
        run = run_handler(SAMPLE, '{"greeting": "Hi"}')
        self.assertEqual(json.loads(run.stdout)["greeting"], "Hi, Ada!")

    def test_bad_input_exits_2_with_the_reason(self):
        run = run_handler(b"not json")
        self.assertEqual(run.returncode, 2)
        self.assertIn("not JSON", run.stderr.decode())


class Stack:
    """`runnel up --config runnel.yaml` in a scratch state dir, in its own process group."""

    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="runnel-test-")
        self.lines = []
        self.up = threading.Event()
        self.process = subprocess.Popen(
            [RUNNEL, "up", "--config", os.path.join(HERE, "runnel.yaml"), "--state-dir", self.state],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:  # until the stack exits
            self.lines.append(line.decode(errors="replace"))
            if line.startswith(b"runnel stack up"):
                self.up.set()
        self.up.set()

    def runnel(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([RUNNEL, *args, "--state-dir", self.state], capture_output=True, timeout=60,
                              check=False)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # drains, then exits 0
        try:
            self.process.wait(timeout=30)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # anything left of its group
            except ProcessLookupError:
                pass
            self.process.wait()
            self.reader.join(timeout=5)
            self.process.stdout.close()
            shutil.rmtree(self.state, ignore_errors=True)


@unittest.skipIf(RUNNEL is None, "no runnel binary: set RUNNEL=/path/to/runnel or put runnel on PATH")
class WithRunnel(unittest.TestCase):
    def test_config_check(self):
        run = subprocess.run([RUNNEL, "config", "check", os.path.join(HERE, "runnel.yaml")],
                             capture_output=True, timeout=60, check=False)
        self.assertEqual(run.returncode, 0, run.stderr.decode())
        self.assertIn("  @NAME@ ", run.stdout.decode())  # its line in the list of functions

    def test_invoke_through_a_stack(self):
        stack = Stack()
        try:
            self.assertTrue(stack.up.wait(timeout=60), "the stack did not start within 60 s")
            self.assertIsNone(stack.process.poll(), "the stack exited:\n" + "".join(stack.lines))
            call = stack.runnel("invoke", "@NAME@", "--data", SAMPLE.decode(), "--timeout", "30s")
            self.assertEqual(call.returncode, 0, call.stderr.decode() + "".join(stack.lines))
            output = json.loads(call.stdout)
            self.assertEqual(output["greeting"], "Hello, Ada!")
            self.assertEqual(output["function"], "@NAME@")
            self.assertTrue(output["event"], "the event id reached the handler")
            bad = stack.runnel("invoke", "@NAME@", "--data", "not json", "--timeout", "30s")
            self.assertEqual(bad.returncode, 1, bad.stdout.decode())  # the function failed: bad input
            self.assertIn("not JSON", bad.stderr.decode() + bad.stdout.decode())
        finally:
            stack.stop()
        self.assertEqual(stack.process.returncode, 0, "".join(stack.lines))


if __name__ == "__main__":
    unittest.main()
