"""The live call: the media path and the media port, recordings and consent, the live
`ConsultRoom` that owns a consult while people are in it."""
