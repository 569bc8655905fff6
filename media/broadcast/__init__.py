"""A training's broadcast: the lecturer's encoded frames packaged as HLS (fMP4 segments) by
stream copy, once per training, served as plain cacheable files (docs/training.md)."""
