"""The FastMCP peer (bench/run, workload 1): FastMCP's HTTP transport
(Streamable HTTP) with a token verifier (FastMCP's StaticTokenVerifier,
which also checks the required scope) and one trivial tool, `echo`. Sessions
are stateful and answer with JSON (`json_response=True`).

    python bench/peers/fastmcp_peer.py PORT TOKEN
"""

import sys
import time

from fastmcp import FastMCP
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

port = int(sys.argv[1]) if len(sys.argv) > 1 else 3402
secret = sys.argv[2] if len(sys.argv) > 2 else "bench-token"

verifier = StaticTokenVerifier(
    tokens={
        secret: {
            "client_id": "bench",
            "scopes": ["mcp"],
            "expires_at": int(time.time()) + 86400,
        }
    },
    required_scopes=["mcp"],
)

mcp = FastMCP("fastmcp-peer", auth=verifier)


@mcp.tool
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


if __name__ == "__main__":
    mcp.run(
        transport="http",
        host="127.0.0.1",
        port=port,
        path="/mcp",
        json_response=True,
        log_level="warning",
        show_banner=False,
    )
