"""Where models come from and how their folders are read: hub resolution and the sentence-transformers
folder files."""
