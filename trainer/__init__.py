"""The trainer: continued pretraining of a Llama-style decoder on the corpus's token shards.

It reads the manifests the tokenizer package writes, mixes and packs their documents, and
trains with DeepSeekMath's settings; `mathcorpus train` (trainer/cli.py) runs it. How the parts
fit together: docs/trainer.md.
"""
