"""The failure type returned (not raised) for one candidate."""

from __future__ import annotations


class JudgeError(Exception):
    """A candidate the judge could not score. The message is the FAILED reason: ``"<kind>: <detail>"``.

    ``kind`` is one of ``refusal``, ``unparseable``, ``out-of-range``, ``http``, ``timeout``,
    ``malformed-response``, ``off-format``, ``missing-input``, ``non-finite``, ``error`` (an unexpected
    exception while judging one candidate).
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind}: {detail}" if detail else kind)
