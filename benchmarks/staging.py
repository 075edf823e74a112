"""Staging layer vs parallel curl: 1 GiB in 100 files from the project's WebDAV storage over TLS.

    python benchmarks/staging.py [--files 100] [--size-mib 10.24] [--parallel 8] [--rounds 2] [--record]

Needs scripts/services/webdav.sh (and the OIDC provider it trusts). The files are written
straight into the server's data directory, then fetched with a bearer token (client
credentials of the test provider, storage.read:/, the server's audience) by
`esap_executors.staging.remote.fetch_many` (fsspec/aiohttp, adler32 computed while streaming and
compared with the server's Digest, atomic rename) and by one `curl --parallel` process (the
anchor: no checksum), alternating, `--parallel` transfers at a time each. The server's digests
are computed once before timing (a data lake stores them). Memory: the peak resident set of this
process during the layer's transfers above its resident set just before (sampled every 10 ms;
after a warm-up fetch of `--parallel` files, so the TLS connections and threads exist: the
steady state of a site fetching inputs), against 2 x the layer's chunk size (the goal).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import append_to_section  # noqa: E402

ENV = Path("/var/lib/webdav-ci/env.json")
SECTION = "## staging"
INTRO = ("`python benchmarks/staging.py`: 1 GiB in 100 files from the WebDAV storage (wsgidav over TLS on "
         "loopback, scripts/services/webdav.sh) through the staging layer (fetch_many) against one "
         "`curl --parallel` process, same parallelism, alternating rounds in one run. Goal: wall time at most "
         "1.2 x curl's; memory at most 2 x the chunk size.")


def token(env: dict[str, str]) -> str:
    discovery = json.load(urllib.request.urlopen(env["issuer"].rstrip("/") + "/.well-known/openid-configuration",
                                                 timeout=20))
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "storage.read:/",
                                   "audience": env["audience"]}).encode()
    request = urllib.request.Request(discovery["token_endpoint"], form)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"ci-client:ci-secret").decode())
    return str(json.load(urllib.request.urlopen(request, timeout=20))["access_token"])


class PeakRss:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self.before = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--size-mib", type=float, default=10.24)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="append the result to RESULTS.md")
    args = parser.parse_args()
    if not ENV.is_file():
        print(f"{ENV} not found: start the storage with scripts/services/webdav.sh start", file=sys.stderr)
        return 2
    env = json.loads(ENV.read_text())
    work = Path(tempfile.mkdtemp(prefix="esap-bench-staging-"))
    folder = f"bench-{os.getpid()}"
    served = Path(env["root"]) / folder
    served.mkdir(parents=True)
    size = int(args.size_mib * (1 << 20))
    try:
        block = os.urandom(1 << 20)
        for i in range(args.files):
            with open(served / f"f{i:03d}.bin", "wb") as out:
                for _ in range(size >> 20):
                    out.write(block[:-1] + bytes([i % 256]))
                out.write(block[: size % (1 << 20)])
        secret = work / "token"
        secret.write_text(token(env))
        secret.chmod(0o600)
        header = work / "header"
        header.write_text(f"Authorization: Bearer {secret.read_text()}\n")
        header.chmod(0o600)
        auth = work / "auth.yaml"
        auth.write_text(f"issuer: {env['issuer']}\nclient_id: ci-device\nstorage:\n  {env['url']}:\n"
                        f"    audience: {env['audience']}\n    scopes: [storage.read:/]\n    ca_bundle: {env['ca']}\n")
        os.environ.update(ESAP_AUTH_CONFIG=str(auth), BEARER_TOKEN_FILE=str(secret), ESAP_STATE_DIR=str(work / "st"))
        from esap_executors.staging import remote

        urls = [env["url"].replace("https://", "davs://") + f"{folder}/f{i:03d}.bin" for i in range(args.files)]
        for url in urls:  # the server's digests once, and the layer's imports and session warm
            remote.stat(url)
        # warm: imports, the aiohttp session with `parallel` TLS connections, the thread pool's first use
        remote.fetch_many([(u, work / "warm" / Path(u).name) for u in urls[:args.parallel]], parallel=args.parallel)
        shutil.rmtree(work / "warm")

        def layer(round_dir: Path) -> tuple[float, int]:
            with PeakRss() as rss:
                start = time.perf_counter()
                done = remote.fetch_many([(u, round_dir / Path(u).name) for u in urls], parallel=args.parallel)
                wall = time.perf_counter() - start
            assert sum(d.size for d in done) == size * args.files
            return wall, rss.peak - rss.before

        def curl(round_dir: Path) -> float:
            config = round_dir.with_suffix(".curlrc")
            https = [u.replace("davs://", "https://") for u in urls]
            config.write_text("".join(f'url = "{u}"\noutput = "{round_dir / Path(u).name}"\n' for u in https))
            round_dir.mkdir()
            argv = ["curl", "--silent", "--show-error", "--fail", "--no-progress-meter", "--parallel",
                    "--parallel-max", str(args.parallel), "--cacert", env["ca"], "-H", f"@{header}", "-K", str(config)]
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            assert sum(p.stat().st_size for p in round_dir.iterdir()) == size * args.files
            return wall

        layer_walls, curl_walls, memory = [], [], []
        for number in range(args.rounds):
            wall, grown = layer(work / f"layer{number}")
            layer_walls.append(wall)
            memory.append(grown)
            shutil.rmtree(work / f"layer{number}")
            curl_walls.append(curl(work / f"curl{number}"))
            shutil.rmtree(work / f"curl{number}")
            print(f"round {number + 1}: layer {layer_walls[-1]:.2f} s (+{grown / (1 << 20):.1f} MiB RSS), "
                  f"curl {curl_walls[-1]:.2f} s", flush=True)
    finally:
        shutil.rmtree(served, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    total = size * args.files / (1 << 30)
    ratio = statistics.median(layer_walls) / statistics.median(curl_walls)
    chunk = remote.CHUNK_SIZE
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = [
        ("data", f"{args.files} files x {size / (1 << 20):.2f} MiB = {total:.2f} GiB, {args.parallel} at a time", ""),
        ("staging layer wall time (median of rounds)", f"{statistics.median(layer_walls):.2f} s "
         f"({', '.join(f'{w:.2f}' for w in layer_walls)})", ""),
        ("curl --parallel wall time (median)", f"{statistics.median(curl_walls):.2f} s "
         f"({', '.join(f'{w:.2f}' for w in curl_walls)})", ""),
        ("ratio layer / curl", f"**{ratio:.2f}**", f"<= 1.2 ({'meets' if ratio <= 1.2 else 'misses'})"),
        ("layer throughput", f"{total * 1024 / statistics.median(layer_walls):.0f} MiB/s", ""),
        ("peak RSS growth during the layer's transfers (max of rounds)", f"**{max(memory) / (1 << 20):.1f} MiB**",
         f"<= 2 x chunk = {2 * chunk / (1 << 20):.0f} MiB ({'meets' if max(memory) <= 2 * chunk else 'misses'})"),
        ("load average (1, 5, 15 min) at the end", load, ""),
    ]
    print("\n".join(f"{name}: {value} {goal}" for name, value, goal in rows))
    if args.record:
        curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
        machine = (f"Machine: vm: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / (1 << 30):.0f} GiB "
                   f"RAM, Linux {platform.release()}, Python {platform.python_version()}, curl {curl_version}; "
                   f"the server (wsgidav on cheroot, Python TLS) is on the same 2 cores.")
        table = "| measure | value | goal |\n|---|---|---|\n" + "\n".join(f"| {n} | {v} | {g} |" for n, v, g in rows)
        append_to_section(SECTION, f"### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{machine}\n\n{table}",
                          INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
