"""Render BENCHMARKS.md from every section's results (``benchmarks/results/SECTION.json``).

Rendering reads only the JSON files, so re-running one section re-renders the whole file
with the other sections as they were last measured; each section says when, where and at
which commit it was measured, and whether it was a quick run.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT, load, machine
from benchmarks.false_alarms import clause_sorted

OUTPUT = ROOT / "BENCHMARKS.md"
SECTIONS = ("detection", "false-alarms", "runtime", "checker", "throughput", "mutation")
TITLES = {"detection": "Detection", "false-alarms": "False alarms", "runtime": "Runtime", "checker": "Linearizability checker",
          "throughput": "Throughput", "mutation": "Mutation testing"}


def cell(value: object) -> str:
    """A Markdown table cell: pipes escaped, line breaks as <br>."""
    return str(value).replace("|", "\\|").replace("\n", "<br>")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` gives one letter per column (l or r), left by default."""
    marks = [("---:" if (align[i:i + 1] == "r") else "---") for i in range(len(header))]
    return [f"| {' | '.join(header)} |", f"|{'|'.join(marks)}|", *(f"| {' | '.join(cell(v) for v in row)} |" for row in rows)]


def code(text: str) -> str:
    """Lines of code for a table cell: HTML-escaped, one per <br>, indentation kept as non-breaking spaces."""
    def line(text: str) -> str:
        sign = text[:1] if text[:1] in ("+", "-", " ") else ""  # a diff line's mark, then the code's own indentation
        body = text[len(sign):].lstrip(" ")
        return html.escape(sign.strip()) + "&nbsp;" * (len(text) - len(sign.strip()) - len(body)) + html.escape(body)

    return "<code>" + "<br>".join(line(part) for part in text.splitlines()) + "</code>"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def measured_line(data: dict[str, Any]) -> str:
    m = data.get("measured") or {}
    parts = [f"Measured {m.get('date', '?')} at commit `{m.get('commit', '?')}`",
             f"{m.get('cores', '?')} cores, Python {m.get('python', '?')}, load average {m.get('load', ['?'])[0]} at the start"]
    if data.get("seconds") is not None:
        parts.append(f"the section took {data['seconds']:.0f} s")
    line = "; ".join(parts) + "."
    if data.get("quick"):
        line += " **Quick run** (`--quick`: fewer repeats and entries, for trying the command out; not the figures to quote)."
    return f"_{line}_"


# ---------------------------------------------------------------- detection


def detection_summary(data: dict[str, Any]) -> list[str]:
    lines = []
    for profile, s in data["summary"].items():
        rate = 100 * s["attributed"] / max(1, s["total"])
        lines.append(f"- detection (in-memory galleries), {profile}: caught {s['caught']}/{s['total']}, first failure names the bug's clause for "
                     f"{s['attributed']}/{s['total']} ({rate:.0f} %); seconds to detect: median {seconds(s['median_seconds'])}, "
                     f"worst {seconds(s['worst_seconds'])} ({s['slowest'] or '-'})"
                     + (f"; {s['timeouts']} not caught within {data['timeout']:.0f} s" if s["timeouts"] else ""))
    return lines


def _outcome(run: dict[str, Any], timeout: float) -> str:
    if run["status"] == "timeout":
        return f"not caught within {timeout:.0f} s"
    if run["status"] != "caught":
        return str(run["status"]).upper()
    mark = "" if run["attributed"] else " (not the bug's clause)"
    count = run["example_calls"]
    calls = "" if count is None else f", {count} call{'' if count == 1 else 's'}"
    return f"{', '.join(run['named'])}{mark}, {run['seconds']:.1f} s{calls}"


def render_detection(data: dict[str, Any]) -> list[str]:
    profiles: list[str] = data["profiles"]
    timeout = data["timeout"]
    which = "Every third entry (a quick run)" if data.get("sampled") else "Every entry"
    lines = [
        f"{which} of the in-memory galleries ({data['entries']} entries; `testbed/backends/broken.py` with `--backend`, "
        "`testbed/stores/broken.py` with `--store`) under each profile: `python -m pytest FLAG=SPEC -x -q -p no:cacheprovider "
        f"--conformance-profile=P` in a fresh directory, thorough with `--conformance-seed={data['seed']}`, {data['workers']} runs at a "
        f"time, each stopped after {timeout:.0f} s; seconds are the whole process's (start-up included), \"attributed\" means the "
        "first failure's first clause is the bug's (`violates`, or an `also` clause stating the same rule), and \"calls\" is the "
        "size of the first failure's shrunk example. Bytecode and Hypothesis' caches (its Unicode table and the constants it "
        "reads from local modules, never its examples) are kept between runs, as in an author's checkout after the kit's first "
        "run; this machine sets PYTHONDONTWRITEBYTECODE, which compiles every module on every run instead"
        + (f" (start-up, a one-test run: {data['startup']['warm']:.2f} s cached, {data['startup']['cold']:.2f} s without bytecode)."
           if data.get("startup") else "."),
        "",
        *table(["profile", "caught", "attributed", "median s to detect", "worst s", "slowest entry (test)", "not caught in time"],
               [[p, f"{s['caught']}/{s['total']}", f"{s['attributed']}/{s['total']} ({100 * s['attributed'] / max(1, s['total']):.0f} %)",
                 seconds(s["median_seconds"]), seconds(s["worst_seconds"]), s["slowest"] or "-", s["timeouts"]]
                for p, s in data["summary"].items()], "lllrrlr"),
        "",
    ]
    if data["engines"] or data["engines_skipped"]:
        lines += ["The engine galleries (`testbed/backends/broken_<engine>.py`), against a server started as the engine tests start it, "
                  "one entry at a time; not in the headline figures.", ""]
        if data["engines"]:
            lines += table(["engine", "profile", "caught", "attributed", "median s", "worst s", "slowest entry (test)"],
                           [[r["engine"], r["profile"], f"{r['caught']}/{r['total']}", f"{r['attributed']}/{r['total']}",
                             seconds(r["median_seconds"]), seconds(r["worst_seconds"]), r["slowest"] or "-"] for r in data["engines"]],
                           "llllrrl")
            lines.append("")
        lines += [f"- {name}: skipped, {reason}" for name, reason in data["engines_skipped"].items()]
        if data["engines_skipped"]:
            lines.append("")
    lines += ["Every run: the clauses the first failure names, its seconds and shrunk example's calls, per profile.", ""]
    by_entry: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for run in data["runs"]:
        by_entry.setdefault((run["gallery"], run["name"]), {})[run["profile"]] = run
    rows = []
    for (gallery, name), runs in by_entry.items():
        first = next(iter(runs.values()))
        tests = {p: f"{r['module']}::{r['test']}" for p, r in runs.items() if r["test"]}
        test = next(iter(tests.values())) if len(set(tests.values())) == 1 else "; ".join(f"{p}: {t}" for p, t in tests.items())
        rows.append([name, gallery, " / ".join(first["clauses"]),
                     *(_outcome(runs[p], timeout) if p in runs else "-" for p in profiles), test or "-"])
    lines += table(["entry", "gallery", "bug's clause", *profiles, "first failing test"], rows)
    return lines


# ---------------------------------------------------------------- false alarms


def false_alarms_summary(data: dict[str, Any]) -> list[str]:
    timeouts = f", {data['timeouts']} runs killed at the {data['timeout']:.0f} s timeout" if data["timeouts"] else ""
    return [f"- false alarms: {data['alarms']} in {data['total_runs']} runs of the whole kit on correct targets{timeouts}"]


def _failure_lines(run: dict[str, Any]) -> list[str]:
    """What a failed run's output says failed: its FAILED and ERROR summary lines, else the failed tests' ids."""
    lines = [line for line in (run.get("output") or "").splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return lines or [f"FAILED {nodeid}" for nodeid in run.get("failed_tests", [])]


def render_false_alarms(data: dict[str, Any]) -> list[str]:
    runs = data["runs_per_target"]
    thorough = f"{runs} time{'s' if runs != 1 else ''} under thorough (`--conformance-seed` {'1' if runs == 1 else f'1..{runs}'})"
    engines = "" if data.get("engines_asked") == [] else " and each engine's example backend"
    scope = (f"Every correct target of `testbed/backends/correct.py` (`CORRECT_TARGETS`, the independent ones included){engines}: "
             + (f"the whole kit {thorough} and once under ci" if runs else "the whole kit once under ci, no thorough run (`--runs 0`)"))
    if data.get("sampled"):
        scope = (f"A quick run: every correct target of `testbed/backends/correct.py` (`CORRECT_TARGETS`, the independent ones included) "
                 f"and each engine's example backend once under ci, and only {', '.join(f'`{t}`' for t in data['quick_thorough'])} "
                 f"{thorough} as well")
    alarms = data["alarms"]
    lines = [
        f"{scope}; each run a fresh `python -m pytest` process, {data['workers']} at a time (engines one at a time); a false alarm is a "
        f"finished run whose verdict is not a pass (runs killed at {data['timeout']:.0f} s are counted apart).",
        "",
        f"**{alarms} false alarm{'s' if alarms != 1 else ''} in {data['total_runs']} runs**"
        + (f"; {data['timeouts']} timeouts" if data["timeouts"] else "") + ".",
        "",
    ]
    for run in data["results"]:
        if run["status"] in ("fail", "error"):
            seed = f" seed {run['seed']}" if run["seed"] is not None else ""
            failed = "; ".join(f"`{line}`" for line in _failure_lines(run)) or "no failed test named"
            lines.append(f"- false alarm: `{run['target']}` under {run['profile']}{seed}, {run['seconds']:.0f} s: {failed}")
    if alarms:
        lines.append("")
    rows = [[f"`{r['target']}`", r["engine"] or "in memory", r["profile"], ", ".join(map(str, r["seeds"])) or "derandomized", r["runs"],
             r["alarms"], r["timeouts"], ", ".join(clause_sorted(set(r["violated"]))) or "-", r["executed"], seconds(r["median_seconds"]), seconds(r["worst_seconds"])]
            for r in data["rows"]]
    lines += table(["target", "engine", "profile", "seeds", "runs", "false alarms", "timeouts", "clauses violated", "tests per run",
                    "median s", "worst s"], rows, "llllrrrlrrr")
    if data["engines_skipped"]:
        lines += ["", *(f"- {name}: skipped, {reason}" for name, reason in data["engines_skipped"].items())]
    return lines


# ---------------------------------------------------------------- runtime


def runtime_summary(data: dict[str, Any]) -> list[str]:
    whole = [r for r in data["rows"] if r["part"] == "whole"]
    figures = "; ".join(f"{r['profile']} {r['mode']} {seconds(r['seconds'])} s" for r in whole)
    tests = sorted({r["tests"] for r in whole if r["tests"]})
    return [f"- the whole kit on the reference backend ({'/'.join(map(str, tests))} tests): {figures}"] if whole else []


def render_runtime(data: dict[str, Any]) -> list[str]:
    parts = [*data["parts"], "whole"]
    lines = [
        f"`python -m pytest --backend={data['target']} --conformance-profile=P` in a fresh directory, serial (`{data['modes']['serial']}`) "
        f"and on two workers (`{data['modes']['2 workers']}`), one part of the suite at a time (its module paths given as arguments) "
        "and then whole; wall seconds of the whole process, and the tests that executed. Thorough runs with `--conformance-seed=1`.",
        "",
    ]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in data["rows"]:
        text = f"{seconds(r['seconds'])} s ({r['tests']} tests)" if r["status"] == "pass" else f"{r['status']}, {seconds(r['seconds'])} s"
        cells.setdefault((r["profile"], r["mode"]), {})[r["part"]] = text
    lines += table(["profile", "mode", *parts], [[p, m, *(c.get(part, "-") for part in parts)] for (p, m), c in cells.items()])
    lines += ["", "Parts: " + "; ".join(f"{part}: {', '.join(f'`{m}`' for m in modules)}" for part, modules in data["parts"].items()) + "."]
    return lines


# ---------------------------------------------------------------- checker


def render_checker(data: dict[str, Any]) -> list[str]:
    lines = [
        f"`conformance.checker.check` on histories simulated from the KV model (linearizable by construction), each also with one stale "
        f"read (refutable only by the search); median of {data['repeats']} runs, budget {data['budget']:g} s, seed {data['seed']}. Wall time, "
        "this process's CPU time in brackets; \"search only\" is with the cheap checks off.",
        "",
    ]
    rows = [[r["history"], r["ops"], r["clients_per_key"], r["keys"], r["unknown"], "yes" if r["linearizable"] else "no", r["verdict"],
             f"{r['ms']:.1f} ms ({r['cpu_ms']:.1f})",
             f"{r['search_ms']:.1f} ms ({r['search_cpu_ms']:.1f}" + ("" if r["search_verdict"] == r["verdict"] else f", {r['search_verdict']}") + ")"]
            for r in data["rows"]]
    return lines + table(["history", "ops", "clients/key", "keys", "unknown", "linearizable", "verdict", "time to verdict", "search only"],
                         rows, "lrrrrllrr")


# ---------------------------------------------------------------- throughput


def render_throughput(data: dict[str, Any]) -> list[str]:
    lines = [
        f"Calls per second of this process's CPU time (the machine may be shared: wall time would time the other jobs too), "
        f"one after another on one asyncio event loop, median of {data['rounds']} rounds (the reference's and the "
        f"baseline's rounds interleaved); each round starts from a fresh target filled beforehand, untimed ({data['records']:,} records "
        f"in 100 prefixes for the backend, {data['tasks']} tasks of 20 owners for the store). Baselines: "
        f"{data['baseline']['backend']} for `{data['reference']['backend']}`, {data['baseline']['task store']} for "
        f"`{data['reference']['task store']}` (`GenericTaskStore` over the reference backend); ratio = reference / baseline.",
        "",
    ]
    rows = [[r["contract"], f"`{r['method']}`", r["calls_per_round"], f"{r['reference']:,}", f"{r['baseline']:,}", f"{r['ratio']:.2f}"]
            for r in data["rows"]]
    return lines + table(["contract", "method", "calls per round", "reference ops/s", "dict + lock ops/s", "ratio"], rows, "llrrrr")


# ---------------------------------------------------------------- mutation


def mutation_line(data: dict[str, Any]) -> str:
    total, killed, equivalent = data["total"], data["killed"], data["equivalent"]
    scored = total - equivalent
    return (f"Mutation score: {100 * killed / max(1, scored):.1f} % of non-equivalent mutants (the kit's suite killed {killed} of "
            f"{scored} = {total} − {equivalent} explained as equivalent; {100 * killed / max(1, total):.1f} % of all {total}; {data['tool']})")


def _short(name: str) -> str:
    """A mutant's name without its module path: the function and mutant number."""
    return name.rsplit(".", 1)[-1].replace("xǁ", "").replace("ǁ", ".")


def render_mutation(data: dict[str, Any]) -> list[str]:
    survivors = data["survivors"]
    unexplained = [s for s in survivors if not s["equivalent"]]
    passes = "; ".join(f"{name}: `{command}` killed {data['killed_by'].get(name, 0)}" for name, command in data["passes"].items())
    lines = [
        mutation_line(data),
        "",
        f"`python benchmarks/mutation.py` mutates {', '.join(f'`{t}`' for t in data['targets'])} with mutmut and runs, in passes, "
        f"each on what the last left alive: {passes}. The score counts the kit's suite (the first two passes) only; a third, "
        "when run, says which survivors the project's own tests catch. A survivor is equivalent when a rule of "
        "`benchmarks/mutation_equivalents.toml` explains why no caller keeping SPEC.md can tell it from the original; each "
        f"rule gives its class first. {len(survivors)} survivors, {len(survivors) - len(unexplained)} explained, "
        f"{len(unexplained)} not ({data['seconds']:.0f} s)."
        + (f" Rules that explained nothing (stale): {', '.join(code(s) for s in data['stale_explanations'])}." if data.get("stale_explanations") else ""),
        "",
    ]
    if unexplained:
        lines += ["Survivors not explained (each counts against the score):", "",
                  *table(["mutant", "status", "caught by the project's tests", "diff"],
                         [[_short(s["name"]), s["status"], s["killed_by"] or "no", code(s["diff"])] for s in unexplained]), ""]
    explained = [s for s in survivors if s["equivalent"]]
    if explained:
        lines += ["Survivors explained as equivalent:", "",
                  *table(["mutant", "caught by the project's tests", "diff", "why"],
                         [[_short(s["name"]), s["killed_by"] or "no", code(s["diff"]), html.escape(s["explanation"])] for s in explained])]
    return lines if survivors else [*lines, "No mutant survived."]


# ---------------------------------------------------------------- the file

RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "detection": render_detection, "false-alarms": render_false_alarms, "runtime": render_runtime, "checker": render_checker,
    "throughput": render_throughput, "mutation": render_mutation,
}
SUMMARIES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "detection": detection_summary, "false-alarms": false_alarms_summary, "runtime": runtime_summary,
    "mutation": lambda data: [f"- {mutation_line(data)}"],
}


def render(notes: dict[str, str] | None = None, output: Path = OUTPUT, results_dir: Path = RESULTS) -> Path:
    """Write BENCHMARKS.md from every section's JSON in ``results_dir``; ``notes`` says something about a section (why it has no results)."""
    notes = notes or {}
    results = {section: data for section in SECTIONS if (data := load(section, results_dir)) is not None}
    here = machine()
    commits = sorted({(d.get("measured") or {}).get("commit", "?") for d in results.values() if d.get("measured")})
    quick = [TITLES[s] for s, d in results.items() if d.get("quick")]
    lines = [
        "# Benchmarks",
        "",
        "What the conformance kit catches, how fast, how often it is wrong about a correct target, how long it runs, and how fast its "
        "checker, reference backend and task store are. Generated by `python benchmarks/run.py` (all sections; `--only SECTION ...` "
        "re-runs some and keeps the others, `--quick` for a trial run); each section's figures are kept in `benchmarks/results/SECTION.json`. "
        "Older hand-recorded figures are in [benchmarks/RESULTS.md](benchmarks/RESULTS.md).",
        "",
        f"Rendered {here['date']} on {here['cores']} cores, Python {here['python']}, {here['platform']}; measured at commit "
        f"{', '.join(f'`{c}`' for c in commits) or '-'} (each section below says when and where it was measured)."
        + (f" Quick runs, not the figures to quote: {', '.join(quick)}." if quick else ""),
        "",
        "## Summary",
        "",
    ]
    for section, summarise in SUMMARIES.items():
        if section in results:
            lines += summarise(results[section])
        else:
            lines.append(f"- {TITLES[section].lower()}: {notes.get(section, 'not measured yet')}")
    for section in SECTIONS:
        lines += ["", f"## {TITLES[section]}", ""]
        data = results.get(section)
        if data is None:
            lines.append(f"Not measured: {notes.get(section, f'no benchmarks/results/{section}.json yet')}.")
            continue
        if section in notes:
            lines += [f"_{notes[section]}_", ""]
        lines += RENDERERS[section](data)
        if data.get("measured"):
            lines += ["", measured_line(data)]
    output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return output
