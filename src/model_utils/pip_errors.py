"""Telling, from pip's output, a package index that cannot be reached at all from an error of the index itself."""

# Words in pip's output when the index cannot be reached (no network, no DNS, a proxy refusing).
INDEX_UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "ConnectTimeoutError",
    "ProxyError",
)
