"""The rooms a RunConfig passes on its way to a trained run: ``python benchmarks/config_rooms.py fit|submit``.

Traces (``sys.setprofile``, every thread) each call of a ``ttexplore`` function that receives a
RunConfig as an argument (not ``self``), and each parse or validation of one (``RunConfig.from_dict``,
``validate``, ``__post_init__``, ``for_dataset``, ``replace``), while one tiny run trains on digits, from
``fit(config)`` or from ``JobManager.submit(config)`` to the run's end. Prints the modules in order
(consecutive calls in one module collapsed), the rooms (distinct modules), the returns (entering a
module left before), the parses and the validations.
"""
import os
import sys
import tempfile
import threading
os.environ.setdefault("TTEXPLORE_HOME", tempfile.mkdtemp())
sys.path.insert(0, os.getcwd())
from ttexplore.runs.config import RunConfig
ROOT = os.path.join(os.getcwd(), "ttexplore")
events = []
lock = threading.Lock()

armed = [False]

def profiler(frame, event, arg):
    if event != "call" or not armed[0]:
        return
    code = frame.f_code
    path = code.co_filename
    if not path.startswith(ROOT):
        return
    name = code.co_name
    module = os.path.relpath(path, ROOT)
    nargs = code.co_argcount + code.co_kwonlyargcount
    argnames = code.co_varnames[:nargs]
    has = any(isinstance(frame.f_locals.get(a), RunConfig) for a in argnames if a not in ("self", "cls"))
    parse = module.endswith("runs/config.py") and name in ("from_dict", "validate", "__post_init__", "for_dataset", "replace")
    if has or parse:
        with lock:
            events.append((module, name))

def summarize(title):
    seq = []
    for module, name in events:
        if not seq or seq[-1][0] != module:
            seq.append((module, [name]))
        else:
            seq[-1][1].append(name)
    visited, returns = set(), 0
    for module, _ in seq:
        if module in visited:
            returns += 1
        visited.add(module)
    parses = sum(1 for m, n in events if n in ("from_dict",))
    validations = sum(1 for m, n in events if n in ("validate", "__post_init__"))
    print(f"== {title}: {len(visited)} rooms, {returns} returns, {len(seq)} steps; from_dict {parses}, validations {validations}")
    print("   " + " -> ".join(f"{m.replace('.py','')}[{','.join(dict.fromkeys(n))}]" for m, n in seq))

def run(which):
    from ttexplore.runs.data import load_dataset
    dataset = load_dataset("digits")
    config = RunConfig.for_dataset("digits", epochs=1, train_limit=64, batch_size=32, evals_per_epoch=1, ranks=2)
    events.clear()
    if which == "fit":
        from ttexplore.runs.fit import fit
        sys.setprofile(profiler); threading.setprofile(profiler); armed[0] = True
        result = fit(config, dataset)
        armed[0] = False; sys.setprofile(None); threading.setprofile(None)
        assert result.status == "completed", result.error
    else:
        from ttexplore.runs.jobs import JobManager
        from ttexplore.runs.store import RunStore
        store = RunStore(os.path.join(os.environ["TTEXPLORE_HOME"], "runs.db"))
        threading.setprofile(profiler)
        manager = JobManager(store, max_workers=1)
        sys.setprofile(profiler); armed[0] = True
        run_id = manager.submit(config)
        import time
        for _ in range(600):
            if store.get_run(run_id)["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        armed[0] = False; sys.setprofile(None); threading.setprofile(None)
        manager.shutdown()
        assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)
    summarize(which)

run(sys.argv[1])
