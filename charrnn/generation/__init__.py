"""Using a trained model: sampling, beam search, scoring, export."""
