"""Post-processing: turn raw model text into something worth showing as ghost text."""

from __future__ import annotations


def clean_single_line(text: str, line_suffix: str) -> str:
    """Trim a single-line completion against the text after the cursor on its line.

    * trailing whitespace goes; whitespace-only completions become empty (never shown);
    * when the model re-types what already follows the cursor (closing brackets, quotes),
      that tail is dropped so accepting the completion does not duplicate it.
    """
    text = text.rstrip()
    if not text.strip():
        return ""
    tail = line_suffix.strip()
    if tail and text.endswith(tail):
        text = text[: -len(tail)].rstrip()
    elif tail and tail.startswith(text.strip()):
        return ""  # the model only proposes what is already there
    return text
