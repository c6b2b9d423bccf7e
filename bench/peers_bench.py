"""bench/run.sh peers (one peer, one round): the echo benchmark's workload on a peer system.

Runs, on the machine it is started on, the same work bench/echo_bench.py gives FlowMesh:
BENCH_TASKS (1,000) independent no-op tasks submitted at once (tasks_per_sec: all submitted
to all results back) and BENCH_LATENCY_RUNS (200) sequential single-task round trips
(submit -> result; p50/p99), with BENCH_WORKERS (2) worker processes, after a warm-up that
starts the workers. Runs under the venv scripts/install-peers makes.
  python peers_bench.py ray|dask|celery
Prints key=value lines prefixed with the peer's name (ray_tasks_per_sec=...).
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

N_TASKS = int(os.environ.get("BENCH_TASKS", "1000"))
N_LATENCY = int(os.environ.get("BENCH_LATENCY_RUNS", "200"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
HERE = os.path.dirname(os.path.abspath(__file__))


def noop(x):
    return x


def measure(run_many, run_one):
    """(tasks/s, sorted latencies in ms) for the two halves of the workload."""
    t0 = time.perf_counter()
    out = run_many(list(range(N_TASKS)))
    elapsed = time.perf_counter() - t0
    assert len(out) == N_TASKS and out[-1] == N_TASKS - 1, "lost results"
    lat = []
    for k in range(N_LATENCY):
        t = time.perf_counter()
        assert run_one(k) == k
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return N_TASKS / elapsed, lat


def run_ray(tmp):
    import ray
    # num_cpus caps the concurrently running tasks (each asks for 1 CPU) at WORKERS, so Ray
    # runs them in WORKERS worker processes, as FlowMesh runs them on WORKERS workers.
    ray.init(num_cpus=WORKERS, include_dashboard=False, _temp_dir=tmp, log_to_driver=False,
             configure_logging=False)
    try:
        task = ray.remote(num_cpus=1)(noop)
        ray.get([task.remote(i) for i in range(WORKERS * 4)])  # warm-up: start the workers
        return measure(lambda xs: ray.get([task.remote(x) for x in xs]),
                       lambda x: ray.get(task.remote(x)))
    finally:
        ray.shutdown()


def run_dask(tmp):
    import dask
    from distributed import Client, LocalCluster
    dask.config.set({"temporary-directory": tmp})
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      scheduler_port=0, dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(WORKERS, timeout=120)
        client.gather(client.map(noop, range(WORKERS * 4), pure=False))  # warm-up
        return measure(lambda xs: client.gather(client.map(noop, xs, pure=False)),
                       lambda x: client.submit(noop, x, pure=False).result())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(tmp):
    """A private redis-server on a free loopback port in `tmp`; (process, url)."""
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                 "--dir", tmp, "--save", "", "--appendonly", "no"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # waits on redis's own log line, not on a timer
            if "Ready to accept connections" in line:
                # Keep reading its log so a full pipe never blocks it.
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                print(f"peers_bench: redis_server_pid={proc.pid}", file=sys.stderr)
                return proc, f"redis://127.0.0.1:{port}/0"
        proc.wait()  # exited before it was ready (the port was taken meanwhile): try another
    raise RuntimeError("redis-server did not start")


def stop(proc):
    """Stops a process the bench started, by its pid (SIGTERM, then SIGKILL after 30 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_celery(tmp):
    redis, url = start_redis(tmp)
    worker = None
    try:
        env = dict(os.environ, PEERS_CELERY_URL=url, PYTHONPATH=HERE)
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "peers_celery", "worker",
                                   "--pool", "prefork", "--concurrency", str(WORKERS),
                                   "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                                   "--without-heartbeat"],
                                  env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ["PEERS_CELERY_URL"] = url
        sys.path.insert(0, HERE)
        from peers_celery import app, noop as task
        from celery import group
        # Warm-up: returns once the worker has started and served its first tasks.
        group(task.s(i) for i in range(WORKERS * 4)).apply_async().get(timeout=120)
        return measure(lambda xs: group(task.s(x) for x in xs).apply_async().get(timeout=600),
                       lambda x: task.delay(x).get(timeout=60))
    finally:
        if worker is not None:
            stop(worker)
        stop(redis)


def main():
    peer = sys.argv[1]
    runner = {"ray": run_ray, "dask": run_dask, "celery": run_celery}[peer]
    tmp = tempfile.mkdtemp(prefix=f"fm-peer-{peer}-")
    try:
        tps, lat = runner(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{peer}_workers={WORKERS}")
    print(f"{peer}_tasks_per_sec={tps:.0f}")
    print(f"{peer}_latency_p50_ms={statistics.median(lat):.2f}")
    print(f"{peer}_latency_p99_ms={lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
