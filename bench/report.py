"""The benchmark table: the machine, then every figure of the latest run of each benchmark
beside its target (issue 6), as Markdown for the README.

    python -m bench report
"""

from . import common

ORDER = ("locations", "serialize", "push", "push5", "tariff", "export")


def table(results: dict | None = None, machine: dict | None = None) -> str:
    results = common.load_results() if results is None else results
    machine = common.machine() if machine is None else machine
    lines = ["| Machine | |", "|---|---|"]
    for key in ("cpu", "cores", "memory", "os", "python", "postgresql", "django"):
        if machine.get(key):
            lines.append(f"| {key} | {machine[key]} |")
    lines += ["", "| Benchmark | Figure | Target | Met |", "|---|---|---|---|"]
    notes = []
    for name in sorted(results, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n)):
        result = results[name]
        for f in result["figures"]:
            value = f"{f['value']:,}" if isinstance(f["value"], int | float) else f["value"]
            met = {True: "yes", False: "**no**", None: ""}[f["ok"]]
            lines.append(
                f"| {f['name']} | {value} {f['unit']} | {f['target']} | {met} |".replace(
                    "  |", " |"
                )
            )
        for note in result.get("notes", []):
            notes.append(f"- {name} ({result['at']}, load average {result['load']}): {note}")
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv: list[str] | None = None) -> None:
    print(table())


if __name__ == "__main__":
    main()
