"""The worker process: loads one model, proves it works, then holds it until told to unload.

Started by the supervisor as ``python -P -m modelhub.loading.worker`` (see process.py). It reads one JSON
request on stdin, reports on the original stdout as JSON lines (``{"event": "stage" | "loaded" | "failed",
...}``) and logs to stderr, which is the server's log. Anything else printing to stdout is sent to stderr so it cannot
corrupt the protocol. Keeping the model in its own process means a crash, an abort or the kernel's OOM
kill takes down this process only, and unloading frees every byte. The worker ends as soon as nobody
reads its reports (the web process that started it died, even by SIGKILL), rather than go on loading
for no one.
"""

import json
import logging
import os
import select
import signal
import stat
import sys
import threading
import time
import traceback

from modelhub.loading import load_report, verdict
from modelhub.loading.model_files import loaded_path, resolve_model
from modelhub.loading.pipeline import as_json, build_kwargs, describe_environment, jsonable
from modelhub.loading.types import Explanation, LoadRefused
from modelhub.plugin_manager import create_plugin_host

# torch, huggingface_hub and the measuring code are imported inside the functions that use them: the
# worker reports its first stage (and a missing library as a failed load) before paying seconds for them.

log = logging.getLogger("modelhub.worker")
FILES_UNAVAILABLE = "FilesUnavailable"
SMOKE_PROMPT = "The capital of France is"
SMOKE_NEW_TOKENS = 8


class Channel:
    """JSON lines to the supervisor on the process's original stdout."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # prints from libraries and plugins go to the log, not into the protocol

    def send(self, event: str, **fields) -> None:
        self._out.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        self._out.flush()

    def watch(self) -> None:
        """End the process when the reports' pipe loses its reader: the supervisor's process is gone, so
        no one would record this load, and an orphan would hold its memory (and, hung, hold it forever).
        A daemon thread; stdin's EOF cannot tell this, since a caller may close stdin after the request."""
        fd = self._out.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return  # a file or a terminal: nothing to watch
        poller = select.poll()
        poller.register(fd, 0)  # no events asked for: only POLLERR (no reader left) or POLLHUP wake it

        def wait_for_the_reader_to_go():
            while not poller.poll():
                pass
            log.warning("the process reading this worker's reports is gone (the server died?); stopping")
            os._exit(3)

        threading.Thread(target=wait_for_the_reader_to_go, daemon=True, name="supervisor-watch").start()


def smoke_test(loaded) -> dict:
    """Generate a few tokens from a fixed prompt; non-finite logits count as a failure (fp16 NaNs)."""
    import torch

    model, tokenizer = loaded.model, loaded.tokenizer
    # A model offloaded to disk reports the "meta" device; accelerate's hooks move CPU inputs for it.
    device = model.device if model.device.type != "meta" else torch.device("cpu")
    inputs = tokenizer(SMOKE_PROMPT, return_tensors="pt").to(device)
    started = time.perf_counter()
    with torch.no_grad():
        logits = model(**inputs).logits
        if not torch.isfinite(logits).all():
            raise ValueError("The model produced non-finite logits (NaN or Inf) on the smoke-test prompt.")
        output = model.generate(**inputs, max_new_tokens=SMOKE_NEW_TOKENS, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    return {
        "prompt": SMOKE_PROMPT,
        "output": tokenizer.decode(new_tokens, skip_special_tokens=True),  # the greedy continuation, as text
        "new_tokens": int(new_tokens.shape[0]),
        "token_ids": [int(token) for token in new_tokens],
        "seconds": round(time.perf_counter() - started, 3),
    }


def run(request: dict, channel: Channel) -> object | None:
    """Load and test; report the outcome. Returns the loaded model (kept alive by the caller) or None."""
    started = time.perf_counter()
    host = create_plugin_host()
    state: dict = {"environment": None, "final_kwargs": None, "plugin_changes": None}  # sent with every ending
    model = load_config = kwargs = None
    try:
        channel.send("stage", stage="environment")
        _limit_memory(request.get("settings", {}).get("memory_limit_bytes"))
        _limit_cpu_threads(request.get("settings", {}).get("cpu_threads"))
        model = resolve_model(request)
        if loaded_path(model):  # the files as found here (a hub model's snapshot), beside the copy asked for
            state["copy_path"] = loaded_path(model)
        state["environment"] = environment = describe_environment(host, request.get("settings", {}))
        load_config = request.get("load_config") or {}
        log.info("Using custom load config: %s", json.dumps(load_config))
        channel.send("stage", stage="preparing")
        kwargs, state["plugin_changes"] = build_kwargs(host, model, load_config, environment)
        state["final_kwargs"] = jsonable(kwargs)
        log.info("Final from_pretrained kwargs for %s: %s", model.name, as_json(kwargs))
        verdict.preflight(model, kwargs)  # before any weight is read
        baseline = _rss_now()  # torch, transformers and the plugins' imports: what a load costs before weights
        channel.send("stage", stage="loading", final_kwargs=state["final_kwargs"])
        loaded = host.hook.load_model(model=model, kwargs=kwargs, environment=environment)
        if loaded is None:
            raise LoadRefused("No plugin could load this model (is the default_loader plugin disabled?).")
        _judge(loaded, model, environment, kwargs, state)
        channel.send("stage", stage="smoke_test")
        smoke = smoke_test(loaded)
        state["warnings"].extend(verdict.continuation_warnings(smoke, loaded.tokenizer))
        log.info("Loaded %s; smoke test: %r", model.name, smoke["output"])
        channel.send("loaded", smoke_test=smoke, measured_peak=_measured_peak(baseline), load_seconds=round(time.perf_counter() - started, 3), **state)
        if "measure" in request:
            channel.send("stage", stage="measuring")
            results = _measure(loaded, request["measure"], load_seconds=time.perf_counter() - started)
            channel.send("measured", results=results, **state)
        return loaded
    except BaseException as error:  # noqa: BLE001 - every failure is reported, whatever raised it
        explanation = _explain(host, model, error, load_config or {}, kwargs or {}, state["environment"] or {})
        log.error("Loading %s failed: %s: %s", request["model_name"], type(error).__name__, error)
        channel.send("failed", error_type=_error_type(error), error_message=str(error)[:4000],
                     explanation=explanation.cause, suggestion=explanation.suggestion,
                     failure_kind=_failure_kind(error, explanation),
                     traceback=traceback.format_exc()[-4000:], **state)
        return None


def _error_type(error: BaseException) -> str:
    """The error's class name; ``FilesUnavailable`` when the model's files are neither on disk nor
    reachable (no network, or HF_HUB_OFFLINE): the load could not be tried, which the supervisor records
    as no verdict at all (modelhub/loading/status_rules.py) rather than as the model failing here."""
    seen = set()
    cause = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__name__ == "LocalEntryNotFoundError":  # huggingface_hub: not cached, hub unreachable
            return FILES_UNAVAILABLE
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


def _judge(loaded, model, environment: dict, kwargs: dict, state: dict) -> None:
    """What the load really was into ``state`` (so that a failure from here on carries it too), then
    whether it worked: missing or mismatched weights fail it (verdict.py), oddities become warnings."""
    loading_info = getattr(loaded, "loading_info", None)
    state["load_report"] = report = load_report.describe(loaded.model, loading_info, environment, kwargs)
    report.update(getattr(loaded, "report", None) or {})  # what the loading plugin knows (a GGUF file's facts)
    state["warnings"] = verdict.weight_warnings(loading_info)
    log.info("%s loaded as: %s", model.name, as_json(report))
    verdict.check_weights(loaded.model, loading_info, model.files)


def _measure(loaded, settings: dict, load_seconds: float) -> dict:
    from modelhub.measuring.metrics import measure_all

    results = measure_all(loaded.model, loaded.tokenizer, settings or None)
    results["load_seconds"] = round(load_seconds, 3)
    log.info("Measured: TTFT %.1f ms, %.1f tokens/s, perplexity %.3f", results["time_to_first_token"]["avg_latency_ms"],
             results["throughput"]["best_tokens_per_sec"], results["perplexity"]["perplexity"])
    return results


def _limit_memory(limit: int | None) -> None:
    """MODELHUB_WORKER_MEMORY_LIMIT: the process's private memory (RLIMIT_DATA: what torch allocates; the
    weights files mapped from disk are not counted) may not grow past it, so a load that needs more fails
    as out of memory ("can't allocate memory") instead of swapping or meeting the kernel's OOM killer."""
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (int(limit), int(limit)))


def _rss_now() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux
        return None
    return None


def _measured_peak(baseline: int | None) -> dict:
    """The load's and the smoke test's peak (host RSS, GPU max allocated), and the RSS before weights."""
    from modelhub.measuring.metrics import peak_memory

    return {**peak_memory(), "host_baseline_rss_bytes": baseline}


def _failure_kind(error: BaseException, explanation: Explanation) -> str:
    """Which kind of failure (types.FAILURE_KINDS) auto-configure sees: the explainer's, else "other"."""
    if _error_type(error) == FILES_UNAVAILABLE:
        return "files"
    return explanation.kind or getattr(error, "kind", None) or "other"


def _limit_cpu_threads(threads: int | None) -> None:
    """Leave the web server a core: torch would otherwise take every one, and the pages and the API
    answer slowly for as long as a load or a generation runs."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _explain(host, model, error, load_config, kwargs, environment) -> Explanation:
    if isinstance(error, LoadRefused):
        return Explanation(str(error), error.suggestion, kind=error.kind, package=error.package)
    try:
        explanation = host.hook.explain_failure(
            model=model, error=error, load_config=load_config, kwargs=kwargs, environment=environment
        )
    except Exception as hook_error:  # noqa: BLE001 - a broken explainer must not hide the real error
        log.warning("explain_failure raised: %s", hook_error)
        explanation = None
    return explanation or Explanation(f"{type(error).__name__}: {error}")


def main() -> int:
    # Only the supervisor ends a worker (unload, its pipe closing, a kill). A Ctrl-C in the terminal of
    # `modelhub serve` reaches the whole process group: had it killed a loaded model's worker before the
    # server unloaded it, that would be recorded as the worker dying on its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"[modelhub worker {os.getpid()}] %(levelname)s %(name)s: %(message)s")
    channel = Channel()
    channel.watch()
    # SIGTERM is a request to stop (systemd stopping the service signals every process of it, the
    # server's and its workers' alike), not a crash: say so before going, so that the model is not
    # recorded as failing to load, or as having died while loaded.
    signal.signal(signal.SIGTERM, lambda *_: _stop_when_asked(channel))
    request = json.loads(sys.stdin.readline())
    loaded = run(request, channel)
    if loaded is None:
        return 1
    if "measure" in request:
        return 0  # a measurement does not keep the model loaded
    # Hold the model until the supervisor says "unload" or goes away (EOF on stdin).
    for line in sys.stdin:
        if line.strip() == "unload":
            break
    return 0


def _stop_when_asked(channel: Channel) -> None:
    channel.send("terminated", signal="SIGTERM")
    os._exit(0)  # at once, as the default action would: the process ending frees the model's memory


if __name__ == "__main__":
    sys.exit(main())
