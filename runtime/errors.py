"""Errors of the runtime: each says what is wrong and what to do."""

from hmmn_ref.errors import HMMNError


class RuntimeInputError(HMMNError, ValueError):
    """A frame, mask, buffer or call that does not fit (size, dtype, labels, order of calls)."""


class BackendUnavailable(HMMNError, RuntimeError):
    """The backend cannot run on this machine (a package or a GPU is missing)."""


class ArtifactMismatch(HMMNError, RuntimeError):
    """An export folder, manifest or engine this runtime or machine cannot use."""
