"""Driver programs that tests run as separate processes against a loopback Ray cluster.

``python -m helpers.ray_jobs embed ADDRESS MODEL COUNT OUT.npz`` embeds ``COUNT`` STS-B sentences
with two actors, prints ``batch N`` as batches arrive (so a test can kill a worker mid-job), and
saves the ids and embeddings it got.
"""

from __future__ import annotations

import sys


def embed_job(address: str, model: str, count: int, out: str) -> None:
    import numpy as np
    import ray

    import omniembed as oe

    from helpers.models import sts_dev_sentences
    from helpers.ray_cluster import HEAD_IP

    ray.init(address=address, _node_ip_address=HEAD_IP, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    texts = sts_dev_sentences(count)
    ds = ray.data.from_items(
        [{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=count // 20
    )
    embedded = oe.distributed.embed(ds, model, batch_size=20, concurrency=2, key_column="id")
    ids, vectors = [], []
    for number, batch in enumerate(embedded.iter_batches(batch_size=None, batch_format="numpy")):
        ids.extend(batch["id"].tolist())
        vectors.extend(batch["embedding"])
        print(f"batch {number}", flush=True)
    nodes = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
    np.savez(
        out, ids=np.array(ids), embeddings=np.stack(vectors), texts=np.array(texts), nodes=np.array(nodes)
    )
    print("done", flush=True)


def wait_for_nodes(address: str, count: int, timeout_s: float = 60) -> None:
    """Return once the cluster has ``count`` live nodes; exit 1 after ``timeout_s``."""
    import time

    import ray

    from helpers.ray_cluster import HEAD_IP

    ray.init(address=address, _node_ip_address=HEAD_IP, log_to_driver=False)
    deadline = time.monotonic() + timeout_s
    while sum(node["Alive"] for node in ray.nodes()) < count:
        if time.monotonic() > deadline:
            sys.exit(f"the cluster has fewer than {count} nodes after {timeout_s}s")
        time.sleep(0.2)


if __name__ == "__main__":
    if sys.argv[1] == "wait":
        wait_for_nodes(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "embed":
        embed_job(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
