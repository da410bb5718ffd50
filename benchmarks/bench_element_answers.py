"""CPU cost of reading an element's answers record by record (adversary10:
each revision an element answers is checked to be one, `codec.revision_of`).

    .venv/bin/python benchmarks/bench_element_answers.py [--records 300000] [--runs 5]

Run with PYTHONPATH=<tree>/src to time another tree (an A/B against main).

What the http driver does with every record of a listing page and every
change of a feed page once the JSON is parsed: `codec.record_from_json` and
`codec.change_from_json`, on --records of each (a 100,000-user network's
full read lists about 300,000 records over its elements).

CPU seconds of this process (time.process_time), median of --runs; peak RSS.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

from _common import median_cpu  # the tree PYTHONPATH names, else this one

from provgit.wire import codec


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    fields = {"login_id": "x", "first_name": "Ann", "_managed_by": "provgit"}
    listed: list[dict[str, Any]] = [
        {"collection": "users", "key": f"user{i}", "fields": fields, "revision": i}
        for i in range(a.records)
    ]
    fed: list[dict[str, Any]] = [
        {
            "revision": i + 1,
            "collection": "users",
            "key": f"user{i}",
            "op": "put",
            "fields": fields,
            "record_revision": i + 1,
        }
        for i in range(a.records)
    ]

    def read() -> None:
        for item in listed:
            codec.record_from_json(item)
        for change in fed:
            codec.change_from_json(change)

    cpu = median_cpu(a.runs, read)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{a.records} records + {a.records} changes: {cpu:.3f} CPU s, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
