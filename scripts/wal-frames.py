#!/usr/bin/env python3
"""Which tables and indexes a shard store's transactions write, from its write-ahead log.

Each commit appends every page it changed to the WAL (4 KiB each), so pages per transaction are the store's
write cost. Copy a running store and its WAL first (the WAL is reused after each checkpoint, so it holds the
last few thousand pages), then:

    scripts/wal-frames.py COPY/shard-000.sqlite COPY/shard-000.sqlite-wal

It prints the transactions the WAL holds, the pages each wrote on average, and those pages by table or index
(through SQLite's dbstat table, on a private copy: opening the copy would checkpoint its WAL away).
"""
import collections
import shutil
import sqlite3
import struct
import sys
import tempfile


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    store, wal_path = sys.argv[1], sys.argv[2]
    wal = open(wal_path, "rb").read()
    if len(wal) < 32:
        sys.exit(f"{wal_path}: no WAL header")
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">IIIIIIII", wal[:32])
    frames, offset = [], 32
    while offset + 24 + page_size <= len(wal):
        page, commit, frame_salt1, frame_salt2, _, _ = struct.unpack(">IIIIII", wal[offset:offset + 24])
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break  # frames of an earlier round of the reused file
        frames.append((page, commit))
        offset += 24 + page_size
    transactions, current = [], []
    for page, commit in frames:
        current.append(page)
        if commit:
            transactions.append(current)
            current = []
    if not transactions:
        sys.exit(f"{wal_path}: no committed transaction")

    scratch = tempfile.mkdtemp()
    shutil.copy(store, scratch + "/store.sqlite")
    shutil.copy(wal_path, scratch + "/store.sqlite-wal")
    names = dict((page, name) for name, page in
                 sqlite3.connect(scratch + "/store.sqlite").execute("SELECT name, pageno FROM dbstat"))
    shutil.rmtree(scratch, ignore_errors=True)

    # Page 1 is the schema's root and the file header, whose page count changes while the file grows.
    names[1] = "page 1 (file header and schema root)"
    by_name = collections.Counter(names.get(page, "(pages not in the copy's tables: freed since)")
                                  for t in transactions for page in t)
    total = sum(len(t) for t in transactions)
    print(f"page size {page_size}, {len(transactions)} transactions, {total / len(transactions):.1f} pages per transaction")
    for name, count in by_name.most_common():
        print(f"{count / len(transactions):7.2f}  {name}")


if __name__ == "__main__":
    main()
