"""edge_server: an HTTP inference service for any edgekd artifact.

Run it with ``PYTHONPATH=apps/edge-server python -m edge_server ARTIFACT``; build the
ASGI app in code with :func:`create_app`.
"""

from edge_server.app import ServerConfig, create_app
from edge_server.service import ModelService

__all__ = ["ModelService", "ServerConfig", "create_app"]
