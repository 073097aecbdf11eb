"""A fake Firestore with just what DurationStats (gcp/poll_stats.py) uses: collection().document(),
set(merge) with Increment (duration bins and push counts), and get_all; it counts reads and keeps writes."""
from __future__ import annotations


class FakeDb:
    def __init__(self):
        self.docs: dict[str, dict] = {}
        self.writes: list[tuple[str, dict]] = []
        self.reads = 0

    def collection(self, name):
        db = self

        class Col:
            def document(self, doc):
                return Ref(db, f"{name}/{doc}")
        return Col()

    def get_all(self, refs, **_):
        for ref in refs:
            self.reads += 1
            yield Snap(self.docs.get(ref.path))


class Ref:
    def __init__(self, db, path):
        self.db, self.path = db, path

    def set(self, data, merge=False, **_):
        assert merge
        self.db.writes.append((self.path, data))
        doc = self.db.docs.setdefault(self.path, {"bins": {}, "push": {}})
        for name, inc in (data.get("bins") or {}).items():
            doc["bins"][name] = doc["bins"].get(name, 0.0) + inc.value
        for hour, row in (data.get("push") or {}).items():
            kept = doc["push"].setdefault(hour, {})
            for name, inc in row.items():  # jobs, first, after: a field starts at 0 when first incremented
                kept[name] = kept.get(name, 0) + inc.value


class Snap:
    def __init__(self, data):
        self.exists, self._data = data is not None, data

    def to_dict(self):
        return self._data
