"""Safety: toxicity and bias of open-ended generations, harmful-prompt evaluation, safety context distillation.

Commands: `ayakit safety toxicity | harm | distill` (cli.py). Results of every command are merged into
runs/<name>/safety/summary.json (its shape is documented in summary.py); the report renders its tables.
"""
