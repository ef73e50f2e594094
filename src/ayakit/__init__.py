"""ayakit: the Aya multilingual instruction-finetuning recipe as one toolkit."""
__version__ = "0.1.0"
