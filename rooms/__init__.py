"""The consult domain: institutions, people, consults and their lifecycle, permissions, audit.

Nothing here imports aiohttp, socketio or aiortc; storage is reached through `rooms.consults.ports`.
"""
