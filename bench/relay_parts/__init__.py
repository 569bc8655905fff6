"""Parts of the relay benchmark (`bench/relay.py`): child processes, media source, analysis."""
