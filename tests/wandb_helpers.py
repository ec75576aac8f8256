"""Read an offline W&B run back: its ``run-<id>.wandb`` file is a LevelDB-style log of
``wandb_internal_pb2.Record`` messages (wandb 0.31 has no Python reader of its own)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

HEADER = 7  # ":W&B", magic 0xBEE1, version 0
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    """The Records of a ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    out, pos, pending = [], HEADER, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            pending = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            pending += chunk
        else:
            break
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        out.append(record)
    return out


def run_info(run_dir: Path) -> dict[str, Any]:
    """Group, job type and config (the updates merged, top-level keys) of an offline run."""
    (wandb_file,) = run_dir.glob("run-*.wandb")
    info: dict[str, Any] = {"config": {}}
    for record in records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info.update(id=record.run.run_id, group=record.run.run_group,
                        job_type=record.run.job_type)
            items = record.run.config.update
        elif kind == "config":
            items = record.config.update
        else:
            continue
        for item in items:
            key = item.key or ".".join(item.nested_key)
            info["config"][key] = json.loads(item.value_json)
    return info
