"""The consult domain: institutions, people, consults and their lifecycle, permissions, audit.

Nothing here imports aiohttp, socketio or aiortc. Storage is reached through the ports each
package declares in its `ports.py`; the `storage` package implements them.
"""
