"""Instruction finetuning: tokenizer, models, exact packing, the paper's loss, the accelerate loop, resume."""
