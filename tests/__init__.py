"""The plugin's own tests (a package, so helpers import as `tests.helpers`, `tests.chat_server`).

Set here, before `conftest.py` imports `datasets` (which reads it once, at import): the `datasets`
cache of this test process and of the pytest runs it starts is a temporary folder, removed at exit.
Each CSV a test writes becomes a folder of that cache; in the user's ~/.cache/huggingface they
would pile up by the thousand, run after run.
"""

import atexit
import os
import shutil
import tempfile

_DATASETS_CACHE = tempfile.mkdtemp(prefix="airbench-tests-datasets-")
os.environ["HF_DATASETS_CACHE"] = _DATASETS_CACHE
atexit.register(shutil.rmtree, _DATASETS_CACHE, True)
