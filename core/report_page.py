"""What hmmn-eval's and hmmn-bench's HTML reports share: the page, its tables, plots inlined as
data: URIs, and the report folder published whole.

A report is a folder: index.html, which loads nothing from the network (no script, no CDN;
plots and thumbnails inlined), and media/ for the videos it plays (copied in, referenced
relatively), so the folder can be moved or sent as it is. It is built in DIR.partial/ and moved
into place when complete; an earlier report in DIR is replaced only then.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
from typing import Callable, Iterable, List, Optional, Sequence

from hmmn_ref.errors import HMMNError

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
td.worse { background: #f8d0d0; } td.better { background: #d0f0d0; } td.same { color: #888; }
figure { display: inline-block; margin: 0.4em; vertical-align: top; }
figcaption { font-size: 0.8em; color: #555; max-width: 40em; }
img.plot { max-width: 100%; }
video { width: 480px; max-width: 100%; background: #000; }
.note { color: #555; font-size: 0.85em; }
"""


class ReportError(HMMNError, OSError):
    """The report folder cannot be written; the message names it."""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure -> PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image(data: bytes, alt: str, css: str = "plot", caption: Optional[str] = None) -> str:
    tag = f'<img class="{css}" alt="{esc(alt)}" src="{png_uri(data)}">'
    return f"<figure>{tag}<figcaption>{esc(caption)}</figcaption></figure>" if caption else tag


def table(header: Sequence[str], rows: Iterable[Sequence], classes: Optional[Iterable[Sequence[str]]] = None) -> str:
    """An HTML table; `classes`, row by row, gives each cell's CSS class ('' for none)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body: List[str] = []
    class_rows = iter(classes) if classes is not None else None
    for row in rows:
        css = next(class_rows) if class_rows is not None else [""] * len(row)
        cells = "".join(f'<td class="{c}">{esc(v)}</td>' if c else f"<td>{esc(v)}</td>" for v, c in zip(row, css))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>\n{body}\n</body></html>\n")


def video(src: str, poster: Optional[str], caption: str) -> str:
    """A <video> of a file inside the report folder (relative `src`)."""
    attributes = f' poster="{esc(poster)}"' if poster else ""
    return (f'<figure><video controls loop muted preload="auto" src="{esc(src)}"{attributes}></video>'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def check_folder(folder: str) -> str:
    """-> the absolute path of a folder a report may be written to (new, empty, or an earlier
    report); ReportError otherwise. The commands call it before their work, publish again."""
    folder = os.path.abspath(folder)
    if os.path.isfile(folder):
        raise ReportError(f"--report {folder!r} is a file; give a folder (it is created)")
    if os.path.isdir(folder) and os.listdir(folder) and not os.path.isfile(os.path.join(folder, "index.html")):
        raise ReportError(f"--report {folder!r} holds files but no index.html: give an empty or new folder "
                          "(an earlier report there is replaced)")
    return folder


def publish(folder: str, build: Callable[[str], str]) -> str:
    """Run build(work) -> index.html's text in a fresh work folder beside `folder`, write it there,
    then put the work folder in place of `folder` (an earlier report is replaced only now).
    -> the path of index.html. ReportError when `folder` holds something that is not a report."""
    folder = check_folder(folder)
    work, old = folder + ".partial", folder + ".old"
    try:
        for leftover in (work, old):
            shutil.rmtree(leftover, ignore_errors=True)
        os.makedirs(os.path.join(work, "media"))
        text = build(work)
        with open(os.path.join(work, "index.html"), "w", encoding="utf-8") as f:
            f.write(text)
        if os.path.isdir(folder):
            os.replace(folder, old)
        try:
            os.replace(work, folder)
        except OSError:
            if os.path.isdir(old):
                os.replace(old, folder)  # the earlier report back in place
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ReportError(f"cannot write the report {folder!r}: {exc.strerror or exc}") from None
    return os.path.join(folder, "index.html")
