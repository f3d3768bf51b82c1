"""Service load benchmark: concurrent clients searching ``duomo serve`` on loopback.

    .venv/bin/python bench/serve.py                  # 16 clients for 30 s over a 6-video library
    .venv/bin/python bench/serve.py --clients 4 --seconds 5    # smoke test
    .venv/bin/python bench/serve.py --token T        # every request carries a Bearer token

Builds (once, under bench/out/serve/) a small real library: videos whose soundtracks speak known
sentences (Piper TTS), indexed by ``index_paths`` with speech recognition (no OCR). Then starts
``duomo serve`` in its own process on 127.0.0.1 (a free port) and runs ``--clients`` asyncio
clients (httpx, one keep-alive connection each) that search varied queries back to back for
``--seconds``. Reports requests/s, latency percentiles (p50, p90, p99, max), errors (non-200
responses or failed requests) and how many responses found nothing. Results go to
bench/out/serve.json and, as one JSON line, to the end of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "out"
FPS = 10
SAMPLE_RATE = 16000
SENTENCES = [
    ["The red kettle is boiling on the stove.", "Please hand me the wooden spoon.", "Dinner will be ready at seven."],
    ["The tomatoes in the garden are ripe.", "Water the roses before sunset.", "A blackbird sings on the fence."],
    ["The train to the airport leaves at noon.", "Mind the gap between the platform and the train.",
     "Tickets are checked on board."],
    ["Our team scored a goal in the last minute.", "The referee blew the final whistle.",
     "Fans celebrated in the stadium."],
    ["Mix the flour with two eggs and some milk.", "Bake the cake for forty minutes.", "Let it cool before slicing."],
    ["The storm is moving towards the coast.", "Expect heavy rain and strong winds tonight.",
     "The weekend will be sunny and warm."],
]
QUERIES = ["wooden spoon", "kettle boiling", "roses", "ripe tomatoes", "airport train", "platform gap", "goal",
           "referee whistle", "bake a cake", "flour and eggs", "storm coast", "heavy rain", "sunny weekend",
           "dinner at seven", "blackbird", "tickets", "stadium fans", "cool before slicing", "strong winds",
           "what time is dinner", "garden flowers", "football match", "weather forecast", "kitchen"]


def make_library(root: Path) -> Path:
    """The library under ``root/db`` (built once): one video per entry of SENTENCES."""
    db = root / "db"
    if (db / "library.json").is_file():
        return db
    from duomo.library.analyze import IndexSettings
    from duomo.library.index import index_paths
    from duomo.speech.tts import synthesize_many
    from duomo.video.encode import write_video

    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for n, lines in enumerate(SENTENCES):
        spoken = synthesize_many(lines, voice="joe", sample_rate=SAMPLE_RATE)
        gap = np.zeros(SAMPLE_RATE // 2, np.float32)
        audio = np.concatenate([part for audio, _ in spoken for part in (gap, audio)] + [gap])
        num_frames = int(len(audio) / SAMPLE_RATE * FPS)
        color = np.array([(70 * n) % 256, (130 + 50 * n) % 256, (200 - 30 * n) % 256], np.uint8)

        def frames(color=color, num_frames=num_frames):
            for i in range(num_frames):
                frame = np.empty((180, 320, 3), np.uint8)
                frame[:] = color
                x = (i * 4) % 280
                frame[60:100, x:x + 40] = 255 - color
                yield frame

        write_video(videos / f"clip{n}.mp4", frames(), FPS, audio=audio[: num_frames * SAMPLE_RATE // FPS],
                    sample_rate=SAMPLE_RATE)
    report = index_paths([videos], db, settings=IndexSettings(segment_sec=2.0, use_ocr=False))
    if report.failed:
        raise SystemExit(f"indexing failed: {report.failed}")
    return db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: Path, port: int, token: str | None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "duomo.cli.main", "serve", "--db", str(db), "--port", str(port)]
    env = dict(os.environ)
    if token:
        env["DUOMO_TOKEN"] = token
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/info", headers=headers, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start in 300 s")


async def client(n: int, base: str, headers: dict, stop_at: float, latencies: list, errors: list, empty: list):
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        i = n
        while time.perf_counter() < stop_at:
            query = QUERIES[i % len(QUERIES)]
            i += 7  # each client walks the queries in its own order
            tic = time.perf_counter()
            try:
                response = await http.get("/api/search", params={"q": query, "k": 5})
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}: {err}")
                continue
            latencies.append(time.perf_counter() - tic)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:200]}")
            elif not response.json()["results"]:
                empty.append(query)


async def load(base: str, headers: dict, clients: int, seconds: float) -> tuple[list, list, list, float]:
    latencies: list[float] = []
    errors: list[str] = []
    empty: list[str] = []
    # a short warm-up (first queries load lazily-built state), not counted
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        for query in QUERIES[:4]:
            (await http.get("/api/search", params={"q": query})).raise_for_status()
    started = time.perf_counter()
    await asyncio.gather(*(client(n, base, headers, started + seconds, latencies, errors, empty)
                           for n in range(clients)))
    return latencies, errors, empty, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--token", help="run the server with this access token")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    tic = time.perf_counter()
    db = make_library(args.out / "serve")
    build_sec = time.perf_counter() - tic
    port = free_port()
    server = start_server(db, port, args.token)
    try:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        latencies, errors, empty, wall = asyncio.run(load(f"http://127.0.0.1:{port}", headers, args.clients,
                                                          args.seconds))
    finally:
        server.terminate()
        server.wait(30)
    result = {
        "clients": args.clients, "seconds": round(wall, 2), "requests": len(latencies) + sum(
            1 for e in errors if not e[:3].isdigit()),
        "requests_per_sec": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * percentile(latencies, 50), 1), "p90_ms": round(1000 * percentile(latencies, 90), 1),
        "p99_ms": round(1000 * percentile(latencies, 99), 1),
        "max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
        "errors": len(errors), "error_samples": errors[:5], "empty_results": len(empty),
        "videos": len(SENTENCES), "token": bool(args.token), "library_build_sec": round(build_sec, 1),
        "cpus": os.cpu_count(), "load_avg_1min_after": round(os.getloadavg()[0], 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(result, indent=2))
    print(f"{'clients':>8} {'seconds':>8} {'requests':>9} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'errors':>7} {'empty':>6}")
    print(f"{result['clients']:>8} {result['seconds']:>8} {result['requests']:>9} {result['requests_per_sec']:>7} "
          f"{result['p50_ms']:>7} {result['p90_ms']:>7} {result['p99_ms']:>7} {result['max_ms']:>7} "
          f"{result['errors']:>7} {result['empty_results']:>6}")
    for sample in result["error_samples"]:
        print("error:", sample)
    print(json.dumps(result))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
