"""What a consult keeps beside its lifecycle: notes pinned to the recording, attachments."""
