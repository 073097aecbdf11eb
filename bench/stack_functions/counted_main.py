"""The functions' entry points, counted (counting.py): the bench's stack serves this file.

functions-framework loads it as the functions' source (and puts this folder on sys.path);
it puts functions/ on sys.path too and re-exports every entry point of functions/main.py,
each wrapped to count its invocations and, inside them, Firestore and GCS operations.
"""
import sys
from pathlib import Path

import functions_framework

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

import counting

counting.install()

import main as _functions_main  # noqa: E402  (functions/main.py)

for _name in dir(_functions_main):
    _fn = getattr(_functions_main, _name)
    if callable(_fn) and getattr(_fn, "__module__", None) == "main" and not _name.startswith("_"):
        globals()[_name] = functions_framework.http(counting.counted(_name, _fn))
