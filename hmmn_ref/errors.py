"""The common base of every error this project raises on purpose.

It lives on the ground floor (hmmn_ref) so that every package, hmmn_ref's checkpoint loader
included, can derive from it; `except hmmn_ref.HMMNError` catches any of them. Each subclass
keeps its standard base too (ValueError for bad input, RuntimeError for what the machine
lacks), so existing `except ValueError` code still works.
"""


class HMMNError(Exception):
    """An error whose message says what is wrong and what to do."""
