#!/usr/bin/env python3
"""A tiny Alertmanager webhook receiver for the demo: prints one line per
alert it receives and appends it to a log file.

Usage: demo-webhook-receiver.py PORT LOGFILE   (listens on 127.0.0.1:PORT)
"""
import datetime
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()
        try:
            payload = json.loads(body)
        except ValueError:
            return
        now = datetime.datetime.now().strftime("%H:%M:%S")
        with open(LOG, "a") as log:
            for alert in payload.get("alerts", []):
                labels = alert.get("labels", {})
                line = "%s %-8s %s [%s] %s" % (
                    now,
                    alert.get("status", "?").upper(),
                    labels.get("alertname", "?"),
                    labels.get("severity", "?"),
                    alert.get("annotations", {}).get("summary", ""),
                )
                print(line, flush=True)
                log.write(line + "\n")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
