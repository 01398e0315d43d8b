"""Accuracy: corpora, transcription through a chain of builds, WER and its uncertainty."""
