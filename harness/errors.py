"""User-facing errors: each carries a one-line message naming the problem and the fix."""


class HarnessError(Exception):
    """A problem the user can fix (bad adapter name, missing framework, bad file)."""


class FrameworkUnavailable(HarnessError):
    """The framework an adapter needs is not importable in this process."""


class UnknownAdapter(HarnessError):
    """An adapter id or ``module:factory`` spec that does not resolve."""


class CorruptResults(HarnessError):
    """A results file that cannot be read back."""
