"""The signaling edge: aiohttp REST API, socket.io events, JWT auth, ICE/TURN credentials."""
