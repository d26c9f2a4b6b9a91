"""Dual encoders and vision-language embedders that take media beside text: CLIP, CLAP, Qwen3-VL."""
