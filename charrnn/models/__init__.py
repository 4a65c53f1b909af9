"""The shared layer builders and the models built from them."""
