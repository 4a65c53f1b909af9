"""Load on `charrnn serve`: N clients arriving together, each streaming L characters, against the
same N requests served one at a time.

    python bench/serve_load.py RUN [--clients 32] [--length 500] [--precision auto|float32|bfloat16]

Starts the real server (`charrnn serve RUN --port 0`) in a subprocess for each row and talks
HTTP to it (GET /stream, server-sent events). Rows:
- batched: the server as shipped (--max-streams 64): the requests run as streams of one loop;
- one at a time: the same server with --max-streams 1, so the same requests, arriving together,
  are generated one after another (each waits for those before it);
- alone: one request with the server otherwise idle (the floor for either).
Time to first character: from sending the request to receiving the first generated character
(the prime, echoed at once, does not count); to completion: to the `done` event. chars/s: all
generated characters over the time from the first request sent to the last completion. Each
server first answers one warm-up round of the same shape (compilation is excluded).
"""

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time

import numpy as np


class Server:
    def __init__(self, run, max_streams, precision):
        self.process = subprocess.Popen([sys.executable, "-m", "charrnn", "serve", run, "--port", "0",
                                         "--max-streams", str(max_streams), "--precision", precision],
                                        stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            found = re.search(r"on http://127\.0\.0\.1:(\d+) \((.+?) loop;", line)
            if found:
                self.port, self.loop = int(found.group(1)), found.group(2)
                threading.Thread(target=lambda: [None for _ in self.process.stderr], daemon=True).start()
                return
        raise SystemExit("the server did not start")

    def stream(self, length, seed, temperature):
        """(seconds to the first generated character, seconds to done, characters generated, the text)."""
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        connection.request("GET", f"/stream?length={length}&seed={seed}&temperature={temperature}&prime=")
        answer = connection.getresponse()
        first, chars, pieces, text = None, 0, 0, ""
        while True:
            line = answer.readline().decode()
            if not line:
                raise RuntimeError("the stream ended without a done event")
            if line.startswith("event: done"):
                break
            if line.startswith("data: ") and '"texts"' in line:
                pieces += 1
                piece = json.loads(line[6:])["texts"][0]
                text += piece
                if pieces > 1:  # the first piece is the prime
                    chars += len(piece)
                    first = first or time.perf_counter() - started
        done = time.perf_counter() - started
        connection.close()
        return first, done, chars, text

    def health(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read())

    def stop(self):
        self.process.terminate()
        self.process.wait(120)


def crowd(server, clients, length, temperature):
    """All clients at once (a barrier releases them together); returns their results and the wall time."""
    results, barrier = [None] * clients, threading.Barrier(clients)

    def client(index):
        barrier.wait()
        results[index] = server.stream(length, index + 1, temperature)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.perf_counter() - started


def row(label, results, wall):
    firsts, dones = np.array([result[0] for result in results]), np.array([result[1] for result in results])
    chars = sum(result[2] for result in results)
    pct = lambda values, q: np.percentile(values, q)
    return (label, len(results), chars / wall, pct(firsts, 50), pct(firsts, 99), pct(dones, 50), pct(dones, 99))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                        help="the servers' --precision (auto: the native bf16 loop where it runs)")
    args = parser.parse_args()
    from charrnn.tools.bench import machine

    rows, texts = [], []
    for label, max_streams in (("batched (--max-streams 64)", 64), ("one at a time (--max-streams 1)", 1)):
        server = Server(args.run, max_streams, args.precision)
        loop = server.loop
        try:
            crowd(server, args.clients, args.length, args.temperature)  # warm-up: compiles this width
            results, wall = crowd(server, args.clients, args.length, args.temperature)
            rows.append(row(label, results, wall))
            texts.append([result[3] for result in results])
            peak = server.health()["peak_streams"]
            if max_streams == 1:
                server.stream(args.length, 1, args.temperature)
                alone = [server.stream(args.length, seed, args.temperature) for seed in range(1, 6)]
                rows.append(row("alone (one request, 5 in turn)", alone, sum(result[1] for result in alone)))
        finally:
            server.stop()
        print(f"{label}: at most {peak} streams in one chunk", file=sys.stderr)
    same = sum(batched == alone for batched, alone in zip(*texts))
    print(f"machine: {machine()}; {args.clients} clients x {args.length} characters, temperature {args.temperature}; "
          f"{loop} loop")
    print(f"texts identical batched and one at a time (same seeds): {same} of {args.clients}")
    print(f"{'server':<34}{'requests':>9}{'chars/s':>10}{'first p50':>11}{'first p99':>11}{'done p50':>10}{'done p99':>10}")
    for label, count, rate, first50, first99, done50, done99 in rows:
        print(f"{label:<34}{count:>9}{rate:>10,.0f}{first50:>10.3f}s{first99:>10.3f}s{done50:>9.3f}s{done99:>9.3f}s")


if __name__ == "__main__":
    main()
