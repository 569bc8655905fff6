"""Media nodes in their own processes, reached over Redis (`MEDIA_NODES=redis`).

- `leases`: a node announces itself (id, address, UDP range, load) under a key that expires
  unless it is renewed; the live nodes are the keys that exist.
- `bus`: one Redis channel to listen on (subscribed again after an outage) and publishing with
  a time limit.
- `wire`: the JSON of requests, replies and the node's reports.
- `service`: what `teleconsult media-node` runs: a `LocalMediaNode` answering requests.
- `remote`: what signaling uses instead of `LocalMediaNode`: places each consult on the
  least-loaded live node, calls it with time limits, and re-places the consults of a node whose
  lease ran out.
"""
