"""Build README.md from nbs/index.ipynb (nbdev's own README step needs Quarto, which is not installable here).

Markdown cells are copied as they are; code cells become fenced Python blocks, without their
`#|` directives; cells marked `#| hide` are left out. Run with `--check` to fail when README.md
is out of date instead of writing it.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"


def render(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"]).strip("\n")
        if not src:
            continue
        if cell["cell_type"] == "markdown":
            parts.append(src)
        elif cell["cell_type"] == "code":
            lines = src.split("\n")
            directives = [l for l in lines if l.startswith("#|")]
            if any(d.replace(" ", "") in ("#|hide", "#|exporti") for d in directives):
                continue
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip("\n")
            parts.append(f"```python\n{code}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text = render(ROOT / "nbs" / "index.ipynb")
    readme = ROOT / "README.md"
    if "--check" in argv:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            print("README.md is out of date: run python tools/make_readme.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
