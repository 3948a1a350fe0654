"""This project's benchmark page: plots in every hardware folder under benchmarks/results/ and docs/benchmarks.md,
`advlm bench`'s report with what the lab adds (benchmarks/lab/page.py), and docs/benchmarks-heads.md, the lab's side
measurements (benchmarks/lab/side_page.py). Run it after `advlm bench`, the lab's
cost script, or results copied from a lent machine:

    .venv/bin/python benchmarks/report.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from advlm.bench.report import plot_folder, write_docs  # noqa: E402
from lab.page import lab_page  # noqa: E402
from lab.side_page import side_page  # noqa: E402


def main(results: Path = Path("benchmarks/results"), docs: Path = Path("docs/benchmarks.md")) -> None:
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        plot_folder(folder)
    print(f"written: {write_docs(results, docs, lab_page())}")
    side = docs.with_name("benchmarks-heads.md")
    side.write_text("\n".join(side_page(results)))
    print(f"written: {side}")


if __name__ == "__main__":
    main()
