"""Reaching people who are not looking: Web Push, and the duty scheduler that decides when.

Imports `rooms` only. What it needs from the socket.io edge (announcing a request, a status
change, an escalation step, a reminder) is the `notify.duty.Announcer` protocol, which
`signaling.hub.ConsultHub` implements; the composition root wires the two.
"""
