#include "executors/python_bootstrap.h"

namespace flowmesh::executors {

// The program the python executor runs inside the sandbox (standard library only). It
// loads the task's code as a module, binds the entrypoint's parameters to the input
// stages by name, and writes result.json / metrics.json (or error.json and a non-zero
// exit) into $FLOWMESH_PY_OUTPUT, the contract of the published python task.
const char kPythonBootstrap[] = R"PY(
import inspect, json, math, numbers, os, subprocess, sys, traceback, types

OUT = os.environ["FLOWMESH_PY_OUTPUT"]
DEPS = "/tmp/flowmesh-deps"


def write(name, value, lenient=False):
    text = json.dumps(value, indent=2, default=str if lenient else None, allow_nan=lenient)
    with open(os.path.join(OUT, name), "w") as fh:
        fh.write(text)


def fail(kind, message, code=1, tb=None):
    try:
        write("error.json", {"type": kind, "message": message, "traceback": tb}, lenient=True)
    except Exception:
        pass
    print(f"flowmesh python task failed: {kind}: {message}", file=sys.stderr)
    if tb:
        print(tb, file=sys.stderr, end="")
    sys.stderr.flush()
    os._exit(code)


def fail_from(exc, entrypoint):
    if isinstance(exc, SystemExit):
        fail("SystemExit", f"the code called sys.exit({exc.code!r}); "
             f"return from {entrypoint!r} instead")
    fail(type(exc).__name__, str(exc), 1, traceback.format_exc())


class InputError(Exception):
    pass


class StageInput(os.PathLike):
    """One upstream stage, mounted read-only at `path` (results.json inside)."""

    def __init__(self, stage, path):
        self.stage = stage
        self.path = path
        self.artifacts = os.path.join(path, "artifacts")
        self._envelope = None

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"StageInput({self.stage!r}, {self.path!r})"

    def envelope(self):
        if self._envelope is None:
            file = os.path.join(self.path, "results.json")
            try:
                with open(file) as fh:
                    envelope = json.load(fh)
            except (OSError, ValueError) as exc:
                raise InputError(f"stage {self.stage!r}: cannot read {file}: {exc}")
            if not isinstance(envelope, dict) or not isinstance(envelope.get("result"), dict):
                raise InputError(f"stage {self.stage!r}: {file} holds no result")
            self._envelope = envelope
        return self._envelope

    @property
    def result(self):
        return self.envelope()["result"]

    @property
    def metadata(self):
        return self.envelope().get("metadata") or {}

    @property
    def skipped(self):
        return bool(self.metadata.get("skipped"))

    @property
    def task_type(self):
        return self.result.get("task_type")

    @property
    def output(self):
        if self.skipped:
            return None
        if self.task_type == "python":
            return self.result.get("value")
        return self.result


def bind(fn, inputs):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as exc:
        fail("EntrypointError", f"cannot read the entrypoint's signature: {exc}", 3)
    kwargs, rest = {}, False
    available = ", ".join(inputs) or "none"
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            rest = True
        elif p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            fail("EntrypointError", f"parameter {p.name!r} cannot be bound by name; inputs are "
                 f"passed as keyword arguments (inputs: {available})", 3)
        elif p.name == "inputs":
            kwargs["inputs"] = inputs
        elif p.name in inputs:
            kwargs[p.name] = inputs[p.name].output
        elif p.default is p.empty:
            fail("EntrypointError",
                 f"parameter {p.name!r} matches no input stage (inputs: {available})", 3)
    if rest:
        for stage, stage_input in inputs.items():
            kwargs.setdefault(stage, stage_input.output)
    return kwargs


def install_requirements():
    reqs = json.loads(os.environ.get("FLOWMESH_PY_REQUIREMENTS") or "[]")
    if not reqs:
        return
    try:
        import pip  # noqa: F401
    except ImportError:
        fail("RequirementsError", "pip is not available to this worker's python3; "
             "install the Debian package python3-pip on the worker or drop 'requirements'", 2)
    cmd = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--quiet",
           "--disable-pip-version-check", "--target", DEPS, *reqs]
    if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
        fail("RequirementsError", f"pip install {' '.join(reqs)} failed", 2)
    sys.path.insert(0, DEPS)


def finite(value):
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def collect_metrics(value):
    metrics = {}
    written = os.path.join(OUT, "metrics.json")
    if os.path.exists(written):
        try:
            with open(written) as fh:
                loaded = json.load(fh)
        except (OSError, ValueError) as exc:
            fail("MetricsError", f"metrics.json is not valid JSON: {exc}", 3)
        if not isinstance(loaded, dict):
            fail("MetricsError", "metrics.json must hold a JSON object", 3)
        metrics.update(loaded)
    if isinstance(value, dict) and isinstance(value.get("metrics"), dict):
        metrics.update(value["metrics"])
    for name, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            fail("MetricsError", f"metric {name!r} is not a number: {v!r}", 3)
        if not finite(v):
            fail("MetricsError", f"metric {name!r} is not finite: {v!r}", 3)
    return {k: float(v) for k, v in metrics.items()}


def main():
    os.makedirs(OUT, exist_ok=True)
    os.environ["FLOWMESH_OUTPUT"] = OUT
    install_requirements()
    code_path = os.environ["FLOWMESH_PY_CODE"]
    entrypoint = os.environ.get("FLOWMESH_PY_ENTRYPOINT") or "main"
    inputs = {stage: StageInput(stage, path)
              for stage, path in json.loads(os.environ.get("FLOWMESH_PY_INPUTS") or "{}").items()}
    emits = json.loads(os.environ.get("FLOWMESH_PY_EMITS") or "[]")

    module = types.ModuleType(os.path.splitext(os.path.basename(code_path))[0])
    module.__file__ = code_path
    sys.modules[module.__name__] = module
    sys.path.insert(0, os.path.dirname(code_path))
    try:
        with open(code_path) as fh:
            exec(compile(fh.read(), code_path, "exec"), module.__dict__)
    except BaseException as exc:
        fail_from(exc, entrypoint)
    fn = getattr(module, entrypoint, None)
    if not callable(fn):
        fail("EntrypointError", f"the code defines no function {entrypoint!r}", 3)
    try:
        kwargs = bind(fn, inputs)
        value = fn(**kwargs)
    except InputError as exc:
        fail("InputError", str(exc), 3)
    except BaseException as exc:
        fail_from(exc, entrypoint)

    metrics = collect_metrics(value)
    try:
        write("result.json", value)
    except Exception as exc:
        fail("ResultError", f"return value is not JSON-serialisable: {exc}", 3)
    if metrics:
        write("metrics.json", metrics)
    missing = [m for m in emits if m not in metrics]
    if missing:
        fail("MetricsError", f"declared emits {missing} were not reported; return "
             '{"metrics": {...}} or write $FLOWMESH_OUTPUT/metrics.json', 3)
    sys.stdout.flush()
    sys.stderr.flush()


main()
)PY";

}  // namespace flowmesh::executors
