"""``mmbench bench``: measured throughput of the trainer against a bare PyTorch loop."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mmbench.commands import options as opts
from mmbench.commands._common import (
    OutputFormat,
    cli_errors,
    parse_seeds,
    resolve_contexts,
    resolve_fusions,
)

ORDER = 60
#: Epochs per timed training run when --max-epochs is not given.
BENCH_EPOCHS = 2

BENCH_EPILOG = """
[bold]Examples[/bold]

  mmbench bench                                   [dim]# every fusion on synthetic, table[/dim]
  mmbench bench --fusion cross_attention --format json
  mmbench bench --max-epochs 3 --repeats 3 --set train.batch_size=256
  mmbench bench --device cuda --numerics fp32,bf16,compile --format json   [dim]# GPU check[/dim]
  mmbench bench --seeds 0-4 --fusion concat,cross_attention  [dim]# one seed at a time vs vectorised[/dim]
"""


def bench(
    fusion: opts.Fusions = "all",
    context: opts.BenchContexts = None,
    dataset: opts.Dataset = "synthetic",
    set_: opts.Overrides = None,
    max_epochs: opts.MaxEpochs = None,
    repeats: Annotated[
        int | None, typer.Option(help="Timed runs per loop (median reported); default 3, 1 with --seeds.")
    ] = None,
    seeds: opts.Seeds = None,
    device: opts.Device = opts.DEVICE_DEFAULT,
    cli: Annotated[bool, typer.Option("--cli/--no-cli", help="Also time `mmbench --help`/`list`.")] = True,
    fmt: opts.Format = opts.OutputFormat.table,
    epochs: opts.DeprecatedEpochs = None,
    numerics: Annotated[
        str | None,
        typer.Option(
            "--numerics",
            help="Device check instead: per fusion and configuration (fp32, bf16, fp16, compile, "
            "bf16+compile, or all) samples/s, step time, host syncs per epoch, peak memory.",
        ),
    ] = None,
) -> None:
    """Measure trainer vs bare-loop samples/s, inference time, peak memory and size per fusion.

    Each timed training run trains --max-epochs epochs (default 2). With --numerics: the device
    check (mmbench.tools.bench_device), one result per fusion and numeric configuration.

    With --seeds (e.g. 0-4): time each fusion's cell of those seeds trained one seed at a time and
    vectorised (train.seed_batching), under the protocol's full budget unless --max-epochs, and the
    largest per-seed difference of their metrics.
    """
    with cli_errors():
        from mmbench.errors import UsageError
        from mmbench.registry import get_registry
        from mmbench.runner.run import RunRequest, prepare, resolve_device
        from mmbench.tools.bench import bench_fusion, bench_report, cli_startup
        from mmbench.ui.console import RichReporter, out_console, print_json

        seed_list = parse_seeds(seeds)
        repeats = repeats if repeats is not None else 1 if seed_list else 3
        epochs = epochs if epochs is not None else max_epochs if max_epochs is not None else BENCH_EPOCHS
        if epochs < 1 or repeats < 1:
            raise UsageError("--max-epochs and --repeats must be at least 1")
        registry = get_registry()
        fusions = resolve_fusions(fusion, registry)
        dev = resolve_device(device)
        reporter = RichReporter()
        budget = max_epochs if seed_list else None  # --seeds: the protocol's budget unless cut
        prep = prepare(
            RunRequest(
                dataset=dataset, fusions=fusions, overrides=list(set_ or []), device=dev, max_epochs=budget
            ),
            registry,
            reporter,
        )
        if numerics is not None:
            from mmbench.tools.bench_device import report_device_check

            report_device_check(prep, fusions, numerics, dev, epochs, fmt == OutputFormat.json, reporter)
            return
        if seed_list:
            _bench_seeds(prep, fusions, seed_list, dev, repeats, fmt)
            return
        if context is not None:
            _bench_contexts(prep, fusions, resolve_contexts(context, registry), dev, epochs, repeats, fmt)
            return
        results = []
        for name in fusions:
            reporter.log(f"benchmarking {name} ({epochs} epochs x {repeats} repeats per loop)")
            results.append(bench_fusion(prep, name, dev, epochs, repeats))
        report = bench_report(prep, dev, "fusions", results, cli=cli_startup() if cli else None)
        if fmt == OutputFormat.json:
            print_json(report)
            return
        from rich.table import Table

        table = Table(
            title=f"mmbench bench — {prep.data.name} on {dev} ({report['environment']['device_name']})"
        )
        for col in (
            "fusion",
            "params",
            "trainer samples/s",
            "bare samples/s",
            "ratio",
            "overhead ratio",
            "infer ms/sample",
            "peak MiB",
        ):
            table.add_column(col, justify="left" if col == "fusion" else "right")
        for r in results:
            ok = "green" if r["ratio"] >= 0.9 else "red"
            ov = "green" if r["overhead_ratio"] >= 0.9 else "red"
            table.add_row(
                r["fusion"],
                f"{r['params']:,}",
                f"{r['trainer_samples_per_second']:,.0f}",
                f"{r['bare_samples_per_second']:,.0f}",
                f"[{ok}]{r['ratio']:.3f}[/{ok}]",
                f"[{ov}]{r['overhead_ratio']:.3f}[/{ov}]",
                f"{r['inference_ms_per_sample']:.4f}",
                f"{r['peak_memory_bytes'] / 2**20:,.0f}",
            )
        out_console.print(table)
        if report["cli"]:
            c = report["cli"]
            out_console.print(
                f"CLI: --help {c['help']['seconds_median']}s, list {c['list']['seconds_median']}s "
                f"(python startup {c['python_startup_seconds']}s); heavy imports: "
                f"help {c['help']['imports']}, list {c['list']['imports']}"
            )


def _bench_contexts(
    prep: Any, fusions: list[str], contexts: list[str], dev: str, epochs: int, repeats: int, fmt: Any
) -> None:
    """``bench --context``: samples/s, inference and memory per (fusion, context model)."""

    from rich.table import Table

    from mmbench.tools.bench import bench_context, bench_report
    from mmbench.ui.console import RichReporter, out_console, print_json

    reporter = RichReporter()
    results = []
    for fusion in fusions:
        for context in contexts:
            reporter.log(f"benchmarking {fusion} + {context} ({epochs} epochs x {repeats} repeats)")
            results.append(bench_context(prep, fusion, context, dev, epochs, repeats))
    report = bench_report(prep, dev, "contexts", results)
    if fmt == OutputFormat.json:
        print_json(report)
        return
    table = Table(title=f"mmbench bench --context — {prep.data.name} on {dev}")
    for col in ("fusion", "context", "params", "trainer samples/s", "infer ms/sample", "peak MiB"):
        table.add_column(col, justify="left" if col in ("fusion", "context") else "right")
    for r in results:
        table.add_row(
            r["fusion"],
            r["context"],
            f"{r['params']:,}",
            f"{r['trainer_samples_per_second']:,.0f}",
            f"{r['inference_ms_per_sample']:.4f}",
            f"{r['peak_memory_bytes'] / 2**20:,.0f}",
        )
    out_console.print(table)


def _bench_seeds(prep: Any, fusions: list[str], seeds: list[int], dev: str, repeats: int, fmt: Any) -> None:
    """``bench --seeds``: each fusion's cell one seed at a time vs vectorised (``tools.seed_bench``)."""

    from rich.table import Table

    from mmbench.tools.bench import bench_report
    from mmbench.tools.seed_bench import bench_seed_batching
    from mmbench.ui.console import RichReporter, out_console, print_json

    reporter = RichReporter()
    results = []
    for fusion in fusions:
        reporter.log(f"benchmarking {fusion} seeds {seeds}: one at a time vs vectorised ({repeats} repeats)")
        results.append(bench_seed_batching(prep, fusion, seeds, dev, repeats))
    report = bench_report(
        prep, dev, "seed_batching", results, max_epochs=prep.protocol["train"]["max_epochs"]
    )
    if fmt == OutputFormat.json:
        print_json(report)
        return
    table = Table(title=f"mmbench bench --seeds — {prep.data.name} on {dev}, seeds {seeds}")
    for col in ("fusion", "sequential s", "vectorised s", "speed-up", "seed batching", "max |Δ metric|"):
        table.add_column(col, justify="left" if col in ("fusion", "seed batching") else "right")
    for r in results:
        batching = r["seed_batching"] or ""
        if r["fallback"]:
            batching += f" ({r['fallback']})"
        diff = r["max_metric_difference"]
        table.add_row(
            r["fusion"],
            f"{r['sequential_seconds']:.2f}",
            f"{r['vectorised_seconds']:.2f}",
            f"{r['speedup']:.2f}x" if r["speedup"] else "",
            batching,
            "failed run" if diff is None else f"{diff:.4f}",
        )
    out_console.print(table)


def register(app: typer.Typer) -> None:
    app.command(epilog=BENCH_EPILOG)(bench)
