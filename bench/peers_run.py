"""bench/run.sh peers: FlowMesh's echo benchmark and the same workload on Ray, Dask
distributed and Celery (Redis), on this machine, in one run.

BENCH_PEERS_ROUNDS (3) interleaved rounds, each running bench/echo_bench.py then every peer
(bench/peers_bench.py under the peers venv, argv[1]); best of the rounds for each system
(highest tasks/s, lowest p50/p99), so background load on a shared machine hits all alike.
Prints flowmesh_* and <peer>_* figures, the best peer, and echo_ratio_vs_best_peer
(FlowMesh tasks/s over the best peer's) and echo_p50_ratio_vs_best_peer (the best peer's
p50 over FlowMesh's: above 1, FlowMesh answers faster).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ("ray", "dask", "celery")


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=1800)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def main():
    peers_python = sys.argv[1]
    rounds = int(os.environ.get("BENCH_PEERS_ROUNDS", "3"))
    best = {}

    def keep(system, figures, prefix):
        b = best.setdefault(system, {"tasks_per_sec": 0.0, "latency_p50_ms": float("inf"),
                                     "latency_p99_ms": float("inf")})
        b["tasks_per_sec"] = max(b["tasks_per_sec"], float(figures[prefix + "tasks_per_sec"]))
        b["latency_p50_ms"] = min(b["latency_p50_ms"], float(figures[prefix + "latency_p50_ms"]))
        b["latency_p99_ms"] = min(b["latency_p99_ms"], float(figures[prefix + "latency_p99_ms"]))
        b["workers"] = figures[prefix + "workers"]

    for r in range(rounds):
        keep("flowmesh", run([sys.executable, os.path.join(HERE, "echo_bench.py")]), "")
        for peer in PEERS:
            keep(peer, run([peers_python, os.path.join(HERE, "peers_bench.py"), peer]), peer + "_")
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    print(f"rounds={rounds}")
    for system, b in best.items():
        print(f"{system}_workers={b['workers']}")
        print(f"{system}_tasks_per_sec={b['tasks_per_sec']:.0f}")
        print(f"{system}_latency_p50_ms={b['latency_p50_ms']:.2f}")
        print(f"{system}_latency_p99_ms={b['latency_p99_ms']:.2f}")
    top = max(PEERS, key=lambda p: best[p]["tasks_per_sec"])
    fastest = min(PEERS, key=lambda p: best[p]["latency_p50_ms"])
    fm = best["flowmesh"]
    print(f"best_peer={top}")
    print(f"echo_ratio_vs_best_peer={fm['tasks_per_sec'] / best[top]['tasks_per_sec']:.2f}")
    print(f"best_latency_peer={fastest}")
    print(f"echo_p50_ratio_vs_best_peer={best[fastest]['latency_p50_ms'] / fm['latency_p50_ms']:.2f}")


if __name__ == "__main__":
    main()
