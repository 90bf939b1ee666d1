"""Pools: definitions (pools/*.toml), the membership index, and the `Pool` API the rest of the harness uses.

from harness.pools import ensure_pool, document_id
pool = ensure_pool("sandbox")          # generated + indexed on first use
pool.contains(["0f3c...", ...])        # vectorised membership
pool.get("0f3c...")                    # the document, read through the index (shard + byte offset)
for doc in pool.iter_documents(): ...  # what curation scripts read
"""

from harness.pools.ids import document_id, is_id
from harness.pools.index import MembershipIndex
from harness.pools.pool import Pool, create_sandbox, ensure_pool, index_pool, open_pool, shard_urls
from harness.pools.spec import PoolSpec, ShardSpec, get_pool_spec, load_pool_file, pool_names

__all__ = [
    "MembershipIndex",
    "Pool",
    "PoolSpec",
    "ShardSpec",
    "create_sandbox",
    "document_id",
    "ensure_pool",
    "get_pool_spec",
    "index_pool",
    "is_id",
    "load_pool_file",
    "open_pool",
    "pool_names",
    "shard_urls",
]
