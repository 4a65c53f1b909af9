"""Speed of the exported web page (`charrnn export --format web`) in headless chromium, on a 2 x LSTM(256) model.

    python bench/web_speed.py [--length 5000] [--browser /usr/bin/chromium] [--kernel auto|js]

Exports an untrained reference model (2 x LSTM(256), embedding 64, 65 symbols: speed does not
depend on the weights), serves the folder with http.server on 127.0.0.1, generates --length
characters three times on the page and prints the chars/s the page reports (the best of 3),
with the folder's file sizes.
"""

import argparse
import functools
import http.server
import tempfile
import threading
from pathlib import Path


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=5000)
    parser.add_argument("--browser", default="/usr/bin/chromium")
    parser.add_argument("--kernel", choices=["auto", "js"], default="auto",
                        help="js: the page's JavaScript products (?kernel=js) instead of WebAssembly SIMD")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from charrnn.export import export
    from charrnn.tools.bench import _untrained_run, machine

    run = _untrained_run(65)
    folder = export(run, "web", Path(tempfile.mkdtemp(prefix="charrnn-web-")) / "web")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rates = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.browser, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/" + ("?kernel=js" if args.kernel == "js" else ""))
        version = browser.version
        kernel = page.get_attribute("#status", "data-kernel")
        for seed in range(3):
            page.fill("#length", str(args.length))
            page.fill("#seed", str(seed))
            page.click("#generate")
            page.wait_for_function("document.getElementById('status').dataset.state === 'done'", timeout=600_000)
            rates.append(int(page.get_attribute("#status", "data-chars-per-second")))
        browser.close()
    server.shutdown()
    sizes = ", ".join(f"{path.name} {path.stat().st_size:,} bytes" for path in sorted(folder.iterdir()))
    print(f"machine: {machine()}; chromium {version} (headless)")
    print(f"page folder: {sizes}")
    print(f"web page ({kernel} kernel), 2 x LSTM(256), 1 stream: {max(rates):,} chars/s (best of 3 runs of {args.length:,}: "
          f"{', '.join(f'{rate:,}' for rate in rates)})")


if __name__ == "__main__":
    main()
