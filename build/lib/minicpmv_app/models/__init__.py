"""Model architectures the project implements itself, for checkpoints that neither transformers nor the checkpoint
ships code for. One folder per architecture, laid out as a transformers model folder (configuration, modeling,
processing)."""
