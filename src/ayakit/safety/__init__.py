"""Safety: toxicity and bias of open-ended generations, harmful-prompt evaluation, safety context distillation.

Commands: `ayakit safety toxicity | harm | distill` (cli.py); the same steps as `ayakit run` stages when a recipe's
`safety:` section is on (ayakit.runner_safety). Settings are the recipe's (HarmConfig, ToxicityConfig,
DistillConfig, Sampling in ayakit.recipe); the XSafety split is made once per run (split.py). Results are merged
into runs/<name>/safety/summary.json (its shape is documented in summary.py); ayakit.report.safety renders them.
"""
