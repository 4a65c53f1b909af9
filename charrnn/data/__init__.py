"""Corpora, vocabularies and the batches models train on."""
