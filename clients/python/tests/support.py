"""What every test case shares: no fd may leak, no fd may be left to the garbage collector."""
import os
import unittest
import warnings

from vfio_export import Export

from .daemon import open_fds


class NoLeaksTestCase(unittest.TestCase):
    """Each test ends with this process's fds as they were (counted in /proc/self/fd), and without an Fd that was
    closed only by the garbage collector (its ResourceWarning): every fd the client hands out is closed by its
    owner, every fd it keeps is closed by the client."""

    def setUp(self) -> None:
        catcher = warnings.catch_warnings(record=True)
        caught = catcher.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        before = open_fds()

        def check() -> None:
            catcher.__exit__(None, None, None)
            after = open_fds()
            self.assertEqual(before, after, "fds open before the test and after it")
            unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
            self.assertEqual([], unclosed, "fds closed by the garbage collector, not by their owner")

        self.addCleanup(check)  # the first cleanup added runs last: after the test's own


def fd_size(export: Export) -> int:
    """The size of the export's dma-buf as its fd tells it (lseek SEEK_END)."""
    return os.lseek(export.fileno(), 0, os.SEEK_END)
