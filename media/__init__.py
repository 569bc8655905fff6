"""Media: the server's aiortc side (relay, recorder) and the network settings its peers use."""
