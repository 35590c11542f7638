"""Clients for the cluster engine: one address, the primary that Redis Sentinel names,
or a Redis Cluster.

``redis://host:port/db`` (also ``rediss://`` and ``unix://``) is one engine. With
``redis+sentinel://host:port[,host:port...]/service[/db]`` the node asks the
sentinels at those addresses (port 26379 unless given) which engine is the primary
of ``service``, and asks again for every new connection. When a failover moves the
primary, the connections to the old one fail or find it read-only; the node then
takes the engine for out of reach, as after a restart, and its next try reaches the
new primary. With ``redis+cluster://host:port[,host:port...]`` the node finds the
shards of a Redis Cluster from any of those addresses and follows ``MOVED`` and
``ASK`` as the cluster changes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisClusterException, RedisError

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
CLUSTER_PORT = 6379

EngineClient = aioredis.Redis | RedisCluster


async def as_cluster_if_sharded(url: str) -> str | None:
    """For a ``redis://`` or ``rediss://`` URL that names one shard of a Redis Cluster,
    the same address as ``redis+cluster://``, from which the node finds the other
    shards; None for anything else (a single engine, or one out of reach: starting
    on it says why). ValueError for a database number, which a cluster has not."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return None
    address = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))  # no SELECT
    client = aioredis.Redis.from_url(address, socket_connect_timeout=5, socket_timeout=5)
    try:
        info = await client.info("cluster")
    except (RedisError, OSError):
        return None
    finally:
        await client.aclose()
    if not info.get("cluster_enabled"):
        return None
    if parts.path.strip("/") not in ("", "0"):
        raise ValueError("the engine is a Redis Cluster, which has no databases: "
                         "give its address without one")
    return urlunsplit((f"{parts.scheme}+cluster", parts.netloc, "", "", ""))


def is_sharded(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


EngineErrors = (RedisError, RedisClusterException, OSError)
"""What a call to the engine raises when the engine, or a shard of it, is out of reach
(redis-py's cluster errors, such as a slot no shard serves, are not RedisErrors)."""


async def on_shard_of(client: EngineClient, key: str) -> dict[str, Any]:
    """How to send a command without keys (``SCRIPT LOAD``, ``CONFIG GET``) to the shard
    that holds ``key`` alone: redis-py sends those to every primary, or to one of its
    choosing, which may be a shard out of reach. Nothing to add for one engine."""
    if isinstance(client, RedisCluster):
        await client.initialize()  # where the slots are, once
        return {"target_nodes": client.get_node_from_key(key)}
    return {}


async def evicting_policies(client: EngineClient) -> set[str]:
    """The ``maxmemory-policy`` of the engine (each primary of a Redis Cluster) where it
    evicts keys when full (anything but ``noeviction``), read from ``INFO memory`` (a
    managed engine may refuse ``CONFIG``); an engine that will not say is left out."""
    targets: list[dict[str, Any]] = [{}]
    if isinstance(client, RedisCluster):
        await client.initialize()
        targets = [{"target_nodes": primary} for primary in client.get_primaries()]
    found = set()
    for target in targets:
        try:
            info = await client.execute_command("INFO", "memory", **target)
        except EngineErrors:
            continue
        policy = info.get("maxmemory_policy") if isinstance(info, dict) else None
        if isinstance(policy, str) and policy != "noeviction":
            found.add(policy)
    return found


def engine_client(url: str, **options: Any) -> EngineClient:
    """A client of the engine ``url`` names; ValueError, in one line, for a URL it cannot
    use."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES + CLUSTER_SCHEMES:
        return aioredis.Redis.from_url(url, **options)
    addresses = parts.netloc.rpartition("@")[2].split(",")
    if parts.password is not None:
        options["password"] = unquote(parts.password)
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
        options.update(_tls_settings(parts.query))
    if parts.scheme in CLUSTER_SCHEMES:
        if parts.path.strip("/"):
            raise ValueError("a Redis Cluster has no databases: "
                             "redis+cluster://host:port[,host:port...]")
        nodes = [ClusterNode(*_address(text, CLUSTER_PORT, "cluster")) for text in addresses]
        return RedisCluster(startup_nodes=nodes, **options)
    service, db = _service(parts.path)
    sentinels = [_address(text, SENTINEL_PORT, "sentinel") for text in addresses]
    timeouts: dict[str, Any] = {key: options[key] for key in ("socket_timeout",
                                                              "socket_connect_timeout")
                                if key in options}
    client: aioredis.Redis = Sentinel(sentinels, sentinel_kwargs=timeouts).master_for(
        service, db=db, **options)
    return client


TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
TLS_SETTINGS = (*TLS_FILES, "ssl_cert_reqs")


def tls_files(url: str) -> list[str]:
    """The files the TLS settings of ``url``'s query name, to be checked before any
    connection: a FIFO among them would hold the event loop at every one. Nothing for a URL
    that cannot be split (what reads it next says why)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [value for key, value in parse_qsl(query) if key in TLS_FILES]


def _tls_settings(query: str) -> dict[str, str]:
    """The TLS settings in a URL's query (a private CA, a client certificate), named as
    redis-py's own ``rediss://`` URLs name them."""
    return {key: value for key, value in parse_qsl(query) if key in TLS_SETTINGS}


def _service(path: str) -> tuple[str, int]:
    fields = [field for field in path.split("/") if field]
    if not fields or len(fields) > 2 or (len(fields) == 2 and not fields[1].isdigit()):
        raise ValueError("a sentinel URL names the service after the addresses: "
                         "redis+sentinel://host:26379[,host:26379...]/SERVICE[/DB]")
    return fields[0], int(fields[1]) if len(fields) == 2 else 0


def _address(text: str, default_port: int, what: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[ipv6]:port``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"not a {what} address: {text!r} (host:port, a port from 1 to "
                         "65535)")
    return host, int(port) if port else default_port

