"""How fast the command starts, and what it imports.

Run: ``PYTHONPATH=src python bench/startup.py [--runs 20]``

Each measurement is a fresh process, timed from spawn to exit, and the variants are interleaved
(A, B, C, A, B, C, ...) so that machine noise hits them alike. The baseline is the bare
interpreter (``python -c pass``), measured in the same run; the report gives medians, what each
command adds over the bare interpreter, and the ratio. A one-shot ``t2i`` against a loopback
OpenAI-shaped server (the test suite's fixture server) is timed when the OpenAI backend is present,
against the raw engine: the same request made by a bare ``httpx.post`` script.

Budgets (issue 6): ``import abstractvision`` < 50 ms, ``abstractvision --help`` < 100 ms,
one-shot ``t2i`` against a loopback server < 300 ms wall, and no heavy module imported by
``--help``.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "numpy", "PIL", "httpx", "rich", "stable_diffusion_cpp")
BUDGET_MS = {"import abstractvision": 50, "abstractvision --help": 100, "abstractvision t2i (loopback)": 300}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def heavy_modules_after_help(env: dict[str, str]) -> list[str]:
    code = (
        "import sys\nfrom abstractvision.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='abstractvision')\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("HEAVY:"))
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def loopback_t2i(env: dict[str, str], store: str) -> tuple[list[str], list[str], object] | None:
    """argv of a one-shot t2i against the test suite's loopback server, argv of the same request made
    with bare httpx (the raw engine), and the server; None when the OpenAI backend is unavailable."""
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    try:
        import abstractvision.backends.openai_compatible  # noqa: F401
        from fixtures.openai_server import OpenAIServer
    except ImportError as exc:
        print(f"(skipping the loopback t2i: {exc})")
        return None
    server = OpenAIServer()
    argv = [sys.executable, "-m", "abstractvision", "t2i", "a lighthouse", "--provider", "openai"]
    argv += ["--base-url", server.base_url, "--api-key", "sk-bench", "--model", "gpt-image-1", "-q"]
    argv += ["-o", os.path.join(store, "bench.png")]
    raw = (
        "import base64, httpx\n"
        f"r = httpx.post({server.base_url + '/images/generations'!r}, headers={{'Authorization': 'Bearer sk-bench'}},"
        " json={'model': 'gpt-image-1', 'prompt': 'a lighthouse'}, timeout=30)\n"
        f"open({os.path.join(store, 'raw.png')!r}, 'wb').write(base64.b64decode(r.json()['data'][0]['b64_json']))"
    )
    return argv, [sys.executable, "-c", raw], server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    # Measure what an installed package starts like: pip compiles its modules to bytecode, while a
    # source checkout under PYTHONDONTWRITEBYTECODE=1 would recompile every module in every process.
    compileall.compile_dir(ROOT / "src", quiet=1)
    env = _env()
    with tempfile.TemporaryDirectory() as store:
        env["ABSTRACTVISION_STORE_DIR"] = store
        variants = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "import abstractvision": [sys.executable, "-c", "import abstractvision"],
            "abstractvision --help": [sys.executable, "-m", "abstractvision", "--help"],
        }
        loopback = loopback_t2i(env, store)
        if loopback is not None:
            variants["httpx.post, same request (raw engine)"] = loopback[1]
            variants["abstractvision t2i (loopback)"] = loopback[0]
        times: dict[str, list[float]] = {name: [] for name in variants}
        try:
            for argv in variants.values():  # warm the file cache once
                _time(argv, env)
            for _ in range(args.runs):
                for name, argv in variants.items():
                    times[name].append(_time(argv, env))
        finally:
            if loopback is not None:
                loopback[2].close()
    baseline = statistics.median(times["python -c pass (baseline)"])
    print(f"{args.runs} runs each, interleaved; Python {sys.version.split()[0]} on {sys.platform}")
    print("| command | median ms | over bare python ms | ratio to bare python | budget ms |")
    print("|---|---|---|---|---|")
    failed = []
    for name, samples in times.items():
        median = statistics.median(samples)
        budget = BUDGET_MS.get(name)
        if budget is not None and median > budget:
            failed.append(name)
        shown_budget = f"< {budget}" if budget else "-"
        print(f"| `{name}` | {median:.1f} | {median - baseline:.1f} | {median / baseline:.2f} | {shown_budget} |")
    if loopback is not None:
        raw = statistics.median(times["httpx.post, same request (raw engine)"])
        cli = statistics.median(times["abstractvision t2i (loopback)"])
        print(f"\n`abstractvision t2i` over bare httpx: {cli - raw:.1f} ms ({cli / raw:.2f}x)")
    heavy = heavy_modules_after_help(env)
    print(f"\nheavy modules imported by `abstractvision --help`: {', '.join(heavy) or 'none'}")
    if failed or heavy:
        raise SystemExit(f"over budget: {', '.join(failed) or '-'}; heavy imports: {', '.join(heavy) or '-'}")


if __name__ == "__main__":
    main()
