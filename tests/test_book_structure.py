"""The shape every chapter notebook of the book must have (the contract between chapters and the site).

For every ``book/<stem>.ipynb`` listed in ``_toc.yml`` (Markdown pages are skipped):

1. the first cell is a Markdown cell with the chapter title (``# Title``), the only level-1 heading;
2. the first code cell is the Colab install guard, with no output::

       import sys
       if "google.colab" in sys.modules:
           %pip install -q "mmc_teach[book] @ git+https://github.com/mmc-teach/mmc_teach"

3. a "Learning objectives" admonition and a "Prerequisites" part come before the first ``##`` section;
4. a ``## Summary`` heading;
5. at least one ``{exercise}`` with a ``:label:``, and for every exercise a ``{solution} <label>`` with
   ``:class: dropdown`` (hidden behind a toggle on the site);
6. every code cell was executed, top to bottom in one fresh kernel (execution counts 1, 2, 3, ...), with no
   error output (unless marked ``raises-exception``) and no SVG output (nbval compares SVG text and it never
   matches: use ``%config InlineBackend.figure_formats = ['png']``);
7. the placeholder ``book/<stem>.md`` is gone;
8. every figure has alt text: a code cell with an image output carries the metadata
   ``{"mystnb": {"image": {"alt": "..."}}}`` (or ``{"mystnb": {"figure": {"caption": "..."}}}``).

The error messages name the notebook, the cell index (0-based, as ``nbformat`` counts) and what to change.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

GUARD = (
    'import sys\nif "google.colab" in sys.modules:\n'
    '    %pip install -q "mmc_teach[book] @ git+https://github.com/mmc-teach/mmc_teach"'
)
ADMONITIONS = "admonition|note|tip|important|hint|seealso|attention|caution|warning|div|topic"
FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\s*(?:\{(?P<name>[\w:-]+)\})?\s*(?P<arg>.*?)\s*$")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
OPENING_SECTIONS = re.compile(r"^(learning objectives|prerequisites?|objectives|overview)\b", re.I)
# "Prerequisites" in a heading or admonition title, or starting a line (bold or not, maybe a list item).
PREREQ = re.compile(r"^(?:#{1,6}.*\bprerequisites?\b|\s*(?:[-*+]\s+)?(?:\*\*|__)?prerequisites?\b)", re.I | re.M)


def toc_stems(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``file:`` entry of the table of contents, in order (root first)."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    stems = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                stems.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", s) for s in stems]


def _blocks(source: str):
    """Split Markdown into (kind, payload) items: ('heading', (level, text)), ('directive', dict), ('text', line).

    Fenced code and directive bodies are not scanned for headings; directives nest (a solution inside an
    admonition is found).
    """
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if m and (m.group("name") or m.group("fence").startswith("`")):
            fence = m.group("fence")
            close = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            body = []
            j = i + 1
            while j < len(lines) and not close.match(lines[j]):
                body.append(lines[j])
                j += 1
            if m.group("name"):
                options = {}
                for line in body:
                    opt = re.match(r"^:([\w-]+):\s*(.*)$", line)
                    if not opt:
                        break
                    options[opt.group(1)] = opt.group(2).strip()
                yield "directive", {"name": m.group("name"), "arg": m.group("arg"), "options": options, "body": body}
                yield from _blocks("\n".join(body))
            i = j + 1
            continue
        h = HEADING.match(lines[i])
        if h:
            yield "heading", (len(h.group("level")), h.group("text").strip())
        else:
            yield "text", lines[i]
        i += 1


def _is_image_output(output) -> bool:
    return any(key.startswith("image/") for key in output.get("data", {}))


def check_chapter(nb, name: str, placeholder_exists: bool = False) -> list[str]:
    """All the ways notebook ``nb`` breaks the chapter contract (empty list: none)."""
    problems: list[str] = []
    cells = nb.cells

    def add(index, message):
        where = f"cell {index} ({cells[index].cell_type})" if index is not None else "notebook"
        problems.append(f"{name}: {where}: {message}")

    if placeholder_exists:
        add(None, f"the placeholder book/{name.replace('.ipynb', '.md')} still exists next to the notebook; "
                  "`git rm` it (Sphinx would find two documents for one chapter)")
    if not cells:
        return [f"{name}: notebook: has no cells"]

    # 1. title
    if cells[0].cell_type != "markdown" or not re.match(r"^#\s+\S", cells[0].source.lstrip()):
        add(0, "the first cell must be a Markdown cell starting with the chapter title, `# Title`")

    # Walk the Markdown once, remembering where things are.
    headings, directives, opening_text = [], [], []
    opening_done = False
    objectives_at = None
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            continue
        for kind, payload in _blocks(cell.source):
            if kind == "heading":
                level, text = payload
                headings.append((index, level, text))
                if level >= 2 and not OPENING_SECTIONS.match(text):
                    opening_done = True
                if not opening_done:
                    opening_text.append("#" * level + " " + text)
            elif kind == "directive":
                directives.append((index, payload))
                if not opening_done and payload["name"] in ADMONITIONS.split("|"):
                    title = payload["arg"]
                    if re.search(r"learning objectives", title, re.I):
                        objectives_at = index
                    opening_text.append("### " + title)
            elif not opening_done:
                opening_text.append(payload)

    h1 = [(i, t) for i, level, t in headings if level == 1]
    if len(h1) != 1:
        add(None, f"must have exactly one level-1 heading (the title); found {len(h1)}: "
                  + ", ".join(f"cell {i}: {t!r}" for i, t in h1) + " — use `##` for sections")

    # 2. Colab guard
    code = [(i, c) for i, c in enumerate(cells) if c.cell_type == "code"]
    if not code:
        add(None, "has no code cells")
    else:
        i, first = code[0]
        src = first.source
        if not (re.search(r"""["']google\.colab["']\s+in\s+sys\.modules""", src) and re.search(r"[%!]pip install", src)):
            add(i, "the first code cell must be the Colab install guard, exactly:\n" + GUARD
                + "\n  found:\n" + "\n".join("    " + line for line in src.splitlines()[:4]))
        elif first.get("outputs"):
            add(i, "the Colab guard cell must have no output outside Colab; re-execute the notebook")

    # 3. objectives and prerequisites
    if objectives_at is None:
        titled = [i for i, d in directives if re.search(r"learning objectives", d["arg"], re.I)]
        where = f" (found one in cell {titled[0]}, after the first `##` section: move it up)" if titled else ""
        add(None, "needs a 'Learning objectives' admonition before the first `##` section, e.g.\n"
                  "```{admonition} Learning objectives\n- ...\n```" + where)
    if not PREREQ.search("\n".join(opening_text)):
        add(None, "needs a 'Prerequisites' part before the first `##` section (an admonition titled "
                  "'Prerequisites', a `### Prerequisites` heading or a line starting with '**Prerequisites**')")

    # 4. summary
    if not any(level >= 2 and re.match(r"^summary\b", text, re.I) for _, level, text in headings):
        add(None, "needs a `## Summary` heading near the end")

    # 5. exercises and solutions
    exercises = [(i, d) for i, d in directives if d["name"] in ("exercise", "exercise-start")]
    solutions = [(i, d) for i, d in directives if d["name"] in ("solution", "solution-start")]
    if not exercises:
        add(None, "needs at least one exercise: ```{exercise} Title\n:label: ex-<chapter>-1\n...\n```")
    labels = {}
    for i, d in exercises:
        label = d["options"].get("label")
        if not label:
            add(i, f"exercise {d['arg']!r} has no `:label:` option (its solution refers to the label)")
        else:
            labels[label] = i
    solved = set()
    for i, d in solutions:
        target = d["arg"].split()[0] if d["arg"] else ""
        if target not in labels:
            add(i, f"solution refers to {target!r}, which is not the label of an exercise in this notebook "
                   f"(labels: {sorted(labels)})")
        solved.add(target)
        classes = d["options"].get("class", "").split()
        if "dropdown" not in classes:
            add(i, f"solution of {target!r} must be hidden: add the option `:class: dropdown`")
    for label, i in labels.items():
        if label not in solved:
            add(i, f"exercise {label!r} has no solution: add ```{{solution}} {label}\n:class: dropdown\n...\n```")

    # 6. executed, in order, no errors, PNG not SVG
    counts, unexecuted = [], []
    for i, cell in code:
        if not cell.source.strip():
            add(i, "empty code cell: delete it (it is never executed)")
            continue
        if cell.get("execution_count") is None:
            unexecuted.append(i)
        counts.append(cell.get("execution_count"))
        tags = cell.metadata.get("tags", [])
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and "raises-exception" not in tags \
                    and "NBVAL_RAISES_EXCEPTION" not in cell.source:
                add(i, f"has an error output ({output.get('ename')}: {output.get('evalue')})")
            if "image/svg+xml" in output.get("data", {}):
                add(i, "has an SVG figure: nbval compares SVG text, which differs every run; set "
                       "`%config InlineBackend.figure_formats = ['png']` in the import cell")
    if unexecuted:
        problems.append(f"{name}: code cell{'s' if len(unexecuted) > 1 else ''} "
                        f"{', '.join(map(str, unexecuted))} not executed (execution_count is null): execute the "
                        "notebook with `.ci/execute book/NAME.ipynb` (nbconvert with the test session's settings) and commit the outputs")
    if counts and None not in counts and counts != list(range(1, len(counts) + 1)):
        problems.append(f"{name}: notebook: execution counts are {counts}, not 1..{len(counts)}: run it top "
                        "to bottom in a fresh kernel (`.ci/execute book/NAME.ipynb`) before committing")
    return problems


def check_alt_text(nb, name: str) -> list[str]:
    """Code cells with a figure output but without alt text in their ``mystnb`` metadata."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not any(_is_image_output(o) for o in cell.get("outputs", [])):
            continue
        meta = cell.metadata.get("mystnb", {})
        alt = (meta.get("image") or {}).get("alt") or (meta.get("figure") or {}).get("caption")
        if not (isinstance(alt, str) and alt.strip()):
            first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
            problems.append(f"{name}: cell {i} (code, starts {first[:50]!r}): its figure has no alt text; add "
                            'the cell metadata {"mystnb": {"image": {"alt": "<what the figure shows>"}}}')
    return problems


STEMS = toc_stems()


def _notebook_or_skip(stem: str):
    path = BOOK / f"{stem}.ipynb"
    if not path.exists():
        pytest.skip(f"book/{stem} is a Markdown page (a placeholder or a reference page), not a notebook")
    return nbformat.read(path, as_version=4), path


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_contract(stem):
    nb, path = _notebook_or_skip(stem)
    problems = check_chapter(nb, path.name, placeholder_exists=(BOOK / f"{stem}.md").exists())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stem", STEMS)
def test_figures_have_alt_text(stem):
    nb, path = _notebook_or_skip(stem)
    problems = check_alt_text(nb, path.name)
    assert not problems, "\n".join(problems)


def test_toc_entries_exist_and_labels_unique():
    missing = [s for s in STEMS if not (BOOK / f"{s}.md").exists() and not (BOOK / f"{s}.ipynb").exists()]
    assert not missing, f"_toc.yml lists pages with no book/<stem>.md or .ipynb: {missing}"
    seen: dict[str, str] = {}
    clashes = []
    for stem in STEMS:
        path = BOOK / f"{stem}.ipynb"
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for kind, d in _blocks(cell.source):
                label = d["options"].get("label") if kind == "directive" else None
                if label:
                    if label in seen:
                        clashes.append(f"label {label!r} in {path.name} is also used in {seen[label]}")
                    seen[label] = path.name
    assert not clashes, "labels must be unique across the book:\n" + "\n".join(clashes)


EQUATION_LABEL = re.compile(r"\$\$\s*\(([\w-]+)\)")
EQUATION_REF = re.compile(r"\{eq\}`(?:[^`<]*<)?([\w-]+)>?`")


def unreferenced_equation_labels(texts: dict[str, list[str]]) -> list[str]:
    """Labels of displayed equations (``$$ ... $$ (label)``) that no ``{eq}`` role refers to, anywhere."""
    labels = {m.group(1): name for name, parts in texts.items() for t in parts for m in EQUATION_LABEL.finditer(t)}
    refs = {m.group(1) for parts in texts.values() for t in parts for m in EQUATION_REF.finditer(t)}
    return [f"{label} ({name})" for label, name in labels.items() if label not in refs]


def test_every_equation_label_is_referenced():
    # A numbered equation that no sentence points to is either unused or cited by hand as "the formula
    # above": refer to it with {eq}`label` where it is used, or drop the label.
    texts = {}
    for stem in STEMS:
        for path in (BOOK / f"{stem}.ipynb", BOOK / f"{stem}.md"):
            if path.exists():
                cells = nbformat.read(path, as_version=4).cells if path.suffix == ".ipynb" else None
                texts[path.name] = ([c.source for c in cells if c.cell_type == "markdown"] if cells is not None
                                    else [path.read_text(encoding="utf-8")])
    assert not unreferenced_equation_labels(texts), unreferenced_equation_labels(texts)


def test_unreferenced_label_check_on_a_small_page():
    texts = {"a.md": ["$$ x = 1 $$ (eq-x)\n\n$$ y = 2 $$ (eq-y)", "as Eq. {eq}`eq-x` says"],
             "b.md": ["and {eq}`the same <eq-y>`"], "c.md": ["$$ z $$ (eq-z)"]}
    assert unreferenced_equation_labels(texts) == ["eq-z (c.md)"]


# --- the checker itself, on small notebooks made here -----------------------------------------------

def _make(cells):
    nb = nbformat.v4.new_notebook()
    count = 0
    for kind, src, *rest in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            count += 1
            cell = nbformat.v4.new_code_cell(src, execution_count=count)
            cell.outputs = rest[0] if rest else []
            nb.cells.append(cell)
    return nb


GOOD = [
    ("md", "# k-means\n\nIntro."),
    ("code", GUARD),
    ("code", "import numpy as np\n%config InlineBackend.figure_formats = ['png']"),
    ("md", "```{admonition} Learning objectives\n- write Lloyd's algorithm\n```\n\n"
           ":::{admonition} Prerequisites\nChapter 1.\n:::"),
    ("md", "## Lloyd's algorithm\n\n$$ x = 1 $$ (eq-x)"),
    ("code", "print(1)", [nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
    ("md", "## Summary\n\n- done\n\n## Exercises\n\n"
           "```{exercise} Seeds\n:label: ex-demo-1\n\nTry it.\n```\n\n"
           "````{solution} ex-demo-1\n:class: dropdown\n\n```python\nprint(2)\n```\n````"),
]


def test_checker_accepts_a_good_chapter():
    assert check_chapter(_make(GOOD), "good.ipynb") == []


def test_checker_reports_each_problem_precisely():
    bad = [
        ("md", "Intro without title."),
        ("code", "import numpy as np"),
        ("md", "## Lloyd\n\n```{admonition} Learning objectives\n- x\n```"),
        ("code", "1/0", [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                traceback=[])]),
        ("md", "```{exercise} A\n:label: ex-a\nx\n```\n\n```{solution} ex-a\nno dropdown\n```\n\n"
               "```{exercise} B\nno label\n```\n\n```{solution} ex-zz\n:class: dropdown\nx\n```"),
    ]
    nb = _make(bad)
    nb.cells[3].execution_count = 5
    text = "\n".join(check_chapter(nb, "bad.ipynb", placeholder_exists=True))
    for expected in [
        "placeholder book/bad.md still exists",
        "cell 0 (markdown): the first cell must be a Markdown cell starting with the chapter title",
        "exactly one level-1 heading",
        "cell 1 (code): the first code cell must be the Colab install guard",
        "needs a 'Learning objectives' admonition before the first `##` section",
        "found one in cell 2",
        "needs a 'Prerequisites' part",
        "needs a `## Summary` heading",
        "cell 4 (markdown): solution of 'ex-a' must be hidden: add the option `:class: dropdown`",
        "exercise 'B' has no `:label:`",
        "solution refers to 'ex-zz'",
        "cell 3 (code): has an error output (ZeroDivisionError: division by zero)",
        "execution counts are [1, 5], not 1..2",
    ]:
        assert expected in text, f"missing {expected!r} in:\n{text}"


def test_checker_flags_unexecuted_cells_svg_and_missing_alt_text():
    nb = _make(GOOD)
    nb.cells[5].execution_count = None
    png = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    svg = nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg/>", "text/plain": "<Figure>"})
    nb.cells[2].outputs = [png, svg]
    text = "\n".join(check_chapter(nb, "x.ipynb"))
    assert "x.ipynb: code cell 5 not executed (execution_count is null)" in text
    assert "cell 2 (code): has an SVG figure" in text
    assert check_alt_text(nb, "x.ipynb")[0].startswith("x.ipynb: cell 2 (code, starts 'import numpy as np')")
    nb.cells[2].metadata["mystnb"] = {"image": {"alt": "A scatter plot of two clusters."}}
    assert check_alt_text(nb, "x.ipynb") == []


def test_toc_stems_reads_every_chapter():
    assert STEMS[0] == "intro"
    for stem in ["01_clustering_metrics", "02_kmeans", "10_benchmarks", "notation", "glossary", "api"]:
        assert stem in STEMS
