#!/usr/bin/env python3
"""com1-session.py: boots a Keel ISO in Bochs with COM1 on a TCP socket and plays a
script against it, as a user at a serial terminal would: wait for a line, type keys.

    com1-session.py --iso ISO --cpus N --log LOG --timeout S SCRIPT

SCRIPT has one step a line (blank lines and lines starting with '#' are skipped):
    expect REGEX    wait (at most --step-timeout seconds) for output matching REGEX
                    (Python re, searched in what arrived after the previous match)
    send TEXT       type TEXT; \\r, \\n, \\xNN and \\\\ are escapes (\\x01 is Ctrl-A)
    sleep SECONDS   wait (wall time)
LOG gets all of COM1's output, without carriage returns. Exit status 0 when every step
passed, 1 with the failed step named on stderr, 2 for bad use. Bochs's own timeout
(--timeout) bounds the whole run; once the script is done the session waits for Bochs
to end (Keel powers off) and keeps reading until then.

Bochs 2.7's socket-client mode connects to HOST:PORT when it starts, so this listens
first (on a free port of 127.0.0.1) and starts Bochs (tools/run-bochs.sh) after.
Keys are typed one at a time, KEY_GAP seconds apart: Bochs moves one byte into the
UART's 16-byte receive FIFO per character time, and Keel empties it only when it
looks (between slices, or every 10 ms when idle), so a burst could overrun it.
"""
import argparse
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

KEY_GAP = 0.03
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unescape(text):
    return text.encode("latin-1").decode("unicode_escape").encode("latin-1")


def parse_script(path):
    steps = []
    with open(path) as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            verb, _, arg = line.partition(" ")
            if verb not in ("expect", "send", "sleep") or not arg:
                sys.exit(f"com1-session: {path}:{n}: want 'expect REGEX', 'send TEXT' or 'sleep S': {line!r}")
            if verb == "expect":
                try:
                    re.compile(arg)
                except re.error as e:
                    sys.exit(f"com1-session: {path}:{n}: bad regex: {e}")
            steps.append((n, verb, arg))
    return steps


class Session:
    def __init__(self, conn, log):
        self.conn = conn
        self.log = log
        self.text = ""
        self.cursor = 0
        self.closed = False

    def pump(self, wait):
        if self.closed:
            time.sleep(wait)
            return
        ready, _, _ = select.select([self.conn], [], [], wait)
        if not ready:
            return
        data = self.conn.recv(65536)
        if not data:
            self.closed = True
            return
        chunk = data.decode("latin-1").replace("\r", "")
        self.text += chunk
        self.log.write(chunk)
        self.log.flush()

    def expect(self, regex, timeout):
        deadline = time.monotonic() + timeout
        pattern = re.compile(regex, re.M)
        while True:
            m = pattern.search(self.text, self.cursor)
            if m:
                self.cursor = m.end()
                return True
            if self.closed or time.monotonic() > deadline:
                return False
            self.pump(0.1)

    def send(self, data):
        for b in data:
            self.conn.sendall(bytes([b]))
            end = time.monotonic() + KEY_GAP
            while time.monotonic() < end:
                self.pump(max(0.0, end - time.monotonic()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iso", required=True)
    ap.add_argument("--cpus", default="2")
    ap.add_argument("--log", required=True)
    ap.add_argument("--timeout", type=int, default=180)
    ap.add_argument("--step-timeout", type=int, default=60)
    ap.add_argument("script")
    args = ap.parse_args()
    steps = parse_script(args.script)

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    bochs_out = open(args.log + ".bochs", "w")
    bochs = subprocess.Popen(
        [os.path.join(ROOT, "tools/run-bochs.sh"), "--quiet", "--cpus", args.cpus, "--iso", args.iso,
         "--com1-socket", f"127.0.0.1:{port}", "--timeout", str(args.timeout)],
        stdout=bochs_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop_bochs():
        try:
            os.killpg(bochs.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    server.settimeout(60)
    try:
        conn, _ = server.accept()
    except socket.timeout:
        stop_bochs()
        print("com1-session: Bochs did not connect to COM1's socket within 60 s", file=sys.stderr)
        return 1
    server.close()
    status = 0
    with open(args.log, "w") as log:
        s = Session(conn, log)
        for n, verb, arg in steps:
            if verb == "expect":
                if not s.expect(arg, args.step_timeout):
                    why = "COM1 closed (Bochs ended)" if s.closed else f"nothing within {args.step_timeout} s"
                    print(f"com1-session: step {n}: expect /{arg}/: {why}", file=sys.stderr)
                    status = 1
                    break
                print(f"  step {n}: saw /{arg}/")
            elif verb == "send":
                s.send(unescape(arg))
                print(f"  step {n}: typed {arg}")
            else:
                end = time.monotonic() + float(arg)
                while time.monotonic() < end:
                    s.pump(max(0.0, end - time.monotonic()))
        if status:
            stop_bochs()
        # Whatever follows (the reports, the power-off), until Bochs ends.
        while not s.closed and bochs.poll() is None:
            s.pump(0.2)
    conn.close()
    try:
        rc = bochs.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        stop_bochs()
        rc = 124
    if rc == 124:
        print(f"com1-session: Bochs did not end within {args.timeout} s", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
