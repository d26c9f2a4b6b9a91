"""What callers hand to ``encode``: each input's modality, the policy on what it may refer to, and the
decoders for images, audio and video."""
