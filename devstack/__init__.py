"""The local stack: Firestore and Pub/Sub emulators, Google simulator, every function.

`python -m devstack up` (`make up`) runs it in the foreground; tests get the
same `Stack` through the fixtures in tests/conftest.py.
"""

from devstack.procs import StartupError
from devstack.stack import Stack, StackSettings

__all__ = ["Stack", "StackSettings", "StartupError"]
