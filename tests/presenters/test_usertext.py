"""User text is inert on the page and in figures: Markdown shows it as typed, plotly draws no tag or link."""

from __future__ import annotations

import re
import string

import pytest

from ttexplore.presenters.plots import hparam_scatter, training_curves
from ttexplore.presenters.usertext import markdown_text, plot_text
from ttexplore.tt.text import terminal_text

NAMES = ["**bold** [link](https://example.com)", ":red[alarm] :material/home: $x^2$", "<img src=x onerror=alert(1)>",
         "# heading\n- item\n1. one", "back\\slash `code` ~strike~ | table |", "a\x1b[2Jb\u202e", "plain name 中文"]


def commonmark_unescape(markdown: str) -> str:
    """What CommonMark shows for text made only of characters and backslash escapes (an independent reading)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


@pytest.mark.parametrize("name", NAMES)
def test_markdown_text_shows_exactly_the_characters(name):
    markdown = markdown_text(name)
    assert commonmark_unescape(markdown) == terminal_text(name, width=None)
    unescaped_punctuation = re.sub(r"\\[!-/:-@\[-`{-~]", "", markdown)
    assert not any(character in string.punctuation for character in unescaped_punctuation), markdown
    assert "\n" not in markdown and "\x1b" not in markdown


@pytest.mark.parametrize("name", NAMES)
def test_plot_text_has_no_tag(name):
    text = plot_text(name)
    assert "<" not in text and ">" not in text and "\x1b" not in text
    assert text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == terminal_text(name, width=None)


def test_training_curves_show_a_run_name_as_text():
    name = '<a href="https://evil.example">click</a><br><b>x</b>'
    event = {"kind": "epoch", "epoch": 1.0, "step": 10, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0,
             "test_accuracy": 0.5, "elapsed_s": 1.0}
    figure = training_curves([{"label": name, "events": [event]}, {"label": "<i>waiting</i>", "events": []}],
                             title=f"{name} (train dashed, test solid)")
    texts = [trace.name or "" for trace in figure.data] + [annotation.text or "" for annotation in figure.layout.annotations]
    texts.append(figure.layout.title.text)
    assert any("&lt;a href=" in text for text in texts)
    assert not any(re.search(r"<(a|b|i)[ >]", text) for text in texts), texts


def test_hparam_scatter_hover_names_are_text():
    import pandas as pd

    table = pd.DataFrame({"lr": [0.1, 0.01], "best test acc": [0.5, 0.6], "shape": ["<b>s</b>", "4x4"],
                          "name": ["<a href='x'>n</a>", "ok"]})
    figure = hparam_scatter(table, "lr")
    assert all("<a " not in str(text) for trace in figure.data for text in (trace.text or []))
    assert all("<b>" not in trace.name for trace in figure.data)
