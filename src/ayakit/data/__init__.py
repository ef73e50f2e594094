"""The data stage: sources (readers), templates, filters, the mixture and the datatrove pipeline."""
